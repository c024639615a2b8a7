#include "server/address.h"

#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/util/paths.h"
#include "core/util/size.h"

namespace stronghold::server {

namespace {

constexpr size_t kMaxSocketPathBytes =
    107;  // sizeof(sockaddr_un::sun_path) - 1

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
          "--socket: \"", text,
          "\" is not a unix socket path; give PATH, unix:PATH or "
          "unix:///absolute/path (write ./",
          text,
          " for a file name with a colon; TCP addresses go to --listen)"));
    }
  }
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--socket: \"", text, "\" names no path"));
  }
  if (path.size() > kMaxSocketPathBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--socket: \"", path, "\" is ", path.size(),
        " bytes long; unix socket paths are limited to ", kMaxSocketPathBytes));
  }
  return path;
}

std::string DefaultSocketPath() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return core::DefaultSocketPath(runtime != nullptr ? runtime : "");
}

absl::StatusOr<int64_t> ParseBytes(const std::string& text) {
  return core::ParseSize("size", text);
}

}  // namespace stronghold::server
