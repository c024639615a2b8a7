// Where strongholdctl finds strongholdd.
//
// Precedence: the --daemon flag, then $STRONGHOLD_DAEMON, then the default
// socket: $XDG_RUNTIME_DIR/stronghold/strongholdd.sock when XDG_RUNTIME_DIR is
// set (a per-user daemon), else /run/stronghold/strongholdd.sock (the system
// service). Addresses are gRPC targets; a plain path such as /tmp/x.sock is
// taken as a Unix socket, and host:port as TCP.
#ifndef STRONGHOLD_CLIENT_DAEMON_ADDRESS_H_
#define STRONGHOLD_CLIENT_DAEMON_ADDRESS_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::client {

// The environment variables that choose the address. Empty means unset.
struct AddressEnvironment {
  std::string stronghold_daemon;  // $STRONGHOLD_DAEMON
  std::string xdg_runtime_dir;    // $XDG_RUNTIME_DIR

  // Reads both from this process's environment.
  static AddressEnvironment FromProcess();
};

// The default socket when neither --daemon nor $STRONGHOLD_DAEMON is given.
std::string DefaultSocketAddress(const AddressEnvironment& env);

// Turns an address as a user writes it into a gRPC target: a path (anything
// containing '/' without a scheme, e.g. "/tmp/x.sock" or "./x.sock") becomes
// "unix:<path>"; "unix:...", "dns:...", "ipv4:..." etc. and host:port are kept.
std::string NormalizeDaemonAddress(absl::string_view address);

// The gRPC target to dial. `flag` is the --daemon value, nullopt when not
// given. INVALID_ARGUMENT for an empty --daemon and for a Unix socket path
// longer than the kernel allows (107 bytes), naming where it came from.
absl::StatusOr<std::string> ResolveDaemonAddress(
    const std::optional<std::string>& flag, const AddressEnvironment& env);

// The socket path of a "unix:PATH" target; nullopt for other targets.
std::optional<std::string> UnixSocketPath(absl::string_view target);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_DAEMON_ADDRESS_H_
