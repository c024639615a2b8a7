// Where the daemon and its client meet by default. One definition, so the
// two can never disagree.
#ifndef STRONGHOLD_CORE_UTIL_PATHS_H_
#define STRONGHOLD_CORE_UTIL_PATHS_H_

#include <optional>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace stronghold::core {

// $XDG_RUNTIME_DIR/stronghold/strongholdd.sock for a per-user daemon (when
// `xdg_runtime_dir` is set), else /run/stronghold/strongholdd.sock (the
// system service's RuntimeDirectory=).
inline std::string DefaultSocketPath(absl::string_view xdg_runtime_dir) {
  if (!xdg_runtime_dir.empty()) {
    return absl::StrCat(xdg_runtime_dir, "/stronghold/strongholdd.sock");
  }
  return "/run/stronghold/strongholdd.sock";
}

// The socket path of a gRPC "unix:PATH" or "unix:///abs/path" target;
// nullopt for other targets. The daemon's --socket and the client's
// --daemon read unix addresses through this one function.
inline std::optional<std::string> UnixSocketPath(absl::string_view target) {
  if (!absl::ConsumePrefix(&target, "unix:")) return std::nullopt;
  // "unix:///abs/path" is also valid gRPC syntax.
  if (absl::StartsWith(target, "//")) target.remove_prefix(2);
  return std::string(target);
}

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_PATHS_H_
