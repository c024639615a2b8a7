#include "server/address.h"

#include <arpa/inet.h>

#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/util/paths.h"
#include "core/util/size.h"

namespace stronghold::server {

namespace {

constexpr size_t kMaxSocketPathBytes = 107;  // sizeof(sockaddr_un::sun_path) - 1

}  // namespace

absl::StatusOr<std::string> SocketPathFromFlag(const std::string& text) {
  const std::optional<std::string> unix_path = core::UnixSocketPath(text);
  const std::string path = unix_path.value_or(text);
  if (!unix_path.has_value()) {
    // A ':' before any '/' is a scheme ("dns:", "unix-abstract:") or a
    // host:port, not a file: gRPC would not read it as a path, and a
    // directory named after it would be created.
    const size_t colon = path.find(':');
    if (colon != std::string::npos && path.find('/') > colon) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--socket: \"", text, "\" is not a unix socket path; give PATH, unix:PATH or "
          "unix:///absolute/path (write ./", text, " for a file name with a colon; TCP "
          "addresses go to --listen)"));
    }
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--socket: \"", text, "\" names no path"));
  }
  if (path.size() > kMaxSocketPathBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("--socket: \"", path, "\" is ", path.size(),
                     " bytes long; unix socket paths are limited to ", kMaxSocketPathBytes));
  }
  return path;
}

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
