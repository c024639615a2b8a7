// Tells systemd how the daemon is doing, for a Type=notify unit: READY=1 once
// it serves, STOPPING=1 when shutdown begins, and WATCHDOG=1 pings when the
// unit sets WatchdogSec=. Outside systemd (no $NOTIFY_SOCKET) every call does
// nothing, so the daemon runs the same from a shell or a test.
//
// Thread safety: Ready(), Stopping() and StartWatchdog() are called from the
// main thread; the watchdog runs on a thread of its own.
#ifndef STRONGHOLD_SERVER_SYSTEMD_NOTIFIER_H_
#define STRONGHOLD_SERVER_SYSTEMD_NOTIFIER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace stronghold::server {

class SystemdNotifier {
 public:
  SystemdNotifier() = default;
  ~SystemdNotifier();  // stops the watchdog thread
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // READY=1 with a one-line STATUS= shown by `systemctl status`.
  void Ready(absl::string_view status);
  // STOPPING=1: systemd now waits up to TimeoutStopSec= for the exit.
  void Stopping(absl::string_view status);

  // When systemd asked for watchdog pings (WATCHDOG_USEC), pings every half
  // of that interval, each time only after `healthy()` returned true: a
  // daemon whose health check hangs (say, a deadlocked job manager) stops
  // pinging and systemd restarts it. Returns the interval in microseconds,
  // or 0 when no watchdog was asked for (then no thread starts).
  uint64_t StartWatchdog(std::function<bool()> healthy);

 private:
  void WatchdogLoop(uint64_t interval_us);

  std::function<bool()> healthy_;
  std::thread watchdog_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_SYSTEMD_NOTIFIER_H_
