#include "client/daemon_address.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/util/paths.h"

namespace stronghold::client {
namespace {

std::string GetEnv(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

// gRPC's name-resolver schemes: a target starting with one is used verbatim.
constexpr absl::string_view kSchemes[] = {
    "unix:", "unix-abstract:", "dns:", "ipv4:", "ipv6:"};

// sockaddr_un.sun_path holds 108 bytes including the terminating NUL. gRPC
// rejects longer paths with an unhelpful "Failed to create secure client
// channel", so the client checks first.
constexpr size_t kMaxSocketPathBytes = 107;

absl::StatusOr<std::string> CheckSocketPath(std::string target,
                                            absl::string_view source) {
  const std::optional<std::string> path = UnixSocketPath(target);
  if (path.has_value() && path->size() > kMaxSocketPathBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": the socket path ", *path, " is ", path->size(),
        " bytes long; Unix sockets allow at most ", kMaxSocketPathBytes));
  }
  return target;
}

}  // namespace

AddressEnvironment AddressEnvironment::FromProcess() {
  return {.stronghold_daemon = GetEnv("STRONGHOLD_DAEMON"),
          .xdg_runtime_dir = GetEnv("XDG_RUNTIME_DIR")};
}

std::string DefaultSocketAddress(const AddressEnvironment& env) {
  return absl::StrCat("unix:", core::DefaultSocketPath(env.xdg_runtime_dir));
}

std::string NormalizeDaemonAddress(absl::string_view address) {
  address = absl::StripAsciiWhitespace(address);
  for (absl::string_view scheme : kSchemes) {
    if (absl::StartsWith(address, scheme)) return std::string(address);
  }
  if (absl::StrContains(address, '/')) return absl::StrCat("unix:", address);
  return std::string(address);  // host:port
}

absl::StatusOr<std::string> ResolveDaemonAddress(
    const std::optional<std::string>& flag, const AddressEnvironment& env) {
  if (flag.has_value()) {
    if (absl::StripAsciiWhitespace(*flag).empty()) {
      return absl::InvalidArgumentError(
          "--daemon: empty address (give a socket path or host:port)");
    }
    return CheckSocketPath(NormalizeDaemonAddress(*flag), "--daemon");
  }
  if (!env.stronghold_daemon.empty()) {
    return CheckSocketPath(NormalizeDaemonAddress(env.stronghold_daemon),
                           "$STRONGHOLD_DAEMON");
  }
  return CheckSocketPath(DefaultSocketAddress(env), "$XDG_RUNTIME_DIR");
}

std::optional<std::string> UnixSocketPath(absl::string_view target) {
  return core::UnixSocketPath(target);
}

}  // namespace stronghold::client
