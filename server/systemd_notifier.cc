#include "server/systemd_notifier.h"

#include <systemd/sd-daemon.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "glog/logging.h"

namespace stronghold::server {

namespace {

void Notify(const std::string& state) {
  // 0: keep $NOTIFY_SOCKET, so later notifications reach systemd too.
  const int r = sd_notify(0, state.c_str());
  if (r < 0) LOG(WARNING) << "sd_notify(" << state << ") failed: error " << -r;
}

}  // namespace

SystemdNotifier::~SystemdNotifier() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (watchdog_.joinable()) watchdog_.join();
}

void SystemdNotifier::Ready(absl::string_view status) {
  Notify(absl::StrCat("READY=1\nSTATUS=", status));
}

void SystemdNotifier::Stopping(absl::string_view status) {
  Notify(absl::StrCat("STOPPING=1\nSTATUS=", status));
}

uint64_t SystemdNotifier::StartWatchdog(std::function<bool()> healthy) {
  uint64_t usec = 0;
  // 0: keep WATCHDOG_USEC/WATCHDOG_PID in the environment.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0 || watchdog_.joinable())
    return 0;
  healthy_ = std::move(healthy);
  const uint64_t interval_us = usec / 2;
  watchdog_ = std::thread([this, interval_us] { WatchdogLoop(interval_us); });
  return interval_us;
}

void SystemdNotifier::WatchdogLoop(uint64_t interval_us) {
  while (true) {
    if (healthy_()) Notify("WATCHDOG=1");
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(
            absl::Condition(&stop_),
            absl::Microseconds(static_cast<int64_t>(interval_us)))) {
      return;
    }
  }
}

}  // namespace stronghold::server
