// Addresses and sizes from the daemon's command line.
#ifndef STRONGHOLD_SERVER_ADDRESS_H_
#define STRONGHOLD_SERVER_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace stronghold::server {

// $XDG_RUNTIME_DIR/stronghold/strongholdd.sock, else /run/stronghold/strongholdd.sock.
std::string DefaultSocketPath();

// "1048576", "512MiB", "8GiB", "1.5GB" -> bytes.
absl::StatusOr<int64_t> ParseBytes(const std::string& text);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_ADDRESS_H_
