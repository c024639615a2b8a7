#include "server/address.h"

#include <arpa/inet.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/util/paths.h"
#include "core/util/size.h"

namespace stronghold::server {

std::string DefaultSocketPath() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return core::DefaultSocketPath(runtime != nullptr ? runtime : "");
}

absl::Status CheckLoopback(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon + 1 == host_port.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected host:port, got \"", host_port, "\""));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return absl::OkStatus();
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    if ((ntohl(v4.s_addr) >> 24) == 127) return absl::OkStatus();
  } else {
    in6_addr v6;
    if (inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6)) {
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "\"", host, "\" is not a loopback address; the TCP listener has no authentication or TLS "
      "yet, so it accepts 127.0.0.0/8, ::1 or localhost only"));
}

absl::StatusOr<int64_t> ParseBytes(const std::string& text) {
  return core::ParseSize("size", text);
}

}  // namespace stronghold::server
