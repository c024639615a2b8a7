// Addresses and sizes from the daemon's command line.
#ifndef STRONGHOLD_SERVER_ADDRESS_H_
#define STRONGHOLD_SERVER_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace stronghold::server {

// $XDG_RUNTIME_DIR/stronghold/strongholdd.sock, else
// /run/stronghold/strongholdd.sock.
std::string DefaultSocketPath();

// The unix socket path of a --socket value, in the forms strongholdctl's
// --daemon accepts for a unix socket: "unix:PATH", "unix:///abs/path" or a
// plain path ("/run/x.sock", "./x.sock", "x.sock"). INVALID_ARGUMENT naming
// --socket for anything else (another scheme such as "dns:" or
// "unix-abstract:", a host:port, an empty path) and for a path longer than
// a unix socket allows (107 bytes).
absl::StatusOr<std::string> SocketPathFromFlag(const std::string& text);

// "1048576", "512MiB", "8GiB", "1.5GB" -> bytes.
absl::StatusOr<int64_t> ParseBytes(const std::string& text);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_ADDRESS_H_
