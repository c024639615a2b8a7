// Where the daemon and its client meet by default. One definition, so the
// two can never disagree.
#ifndef STRONGHOLD_CORE_UTIL_PATHS_H_
#define STRONGHOLD_CORE_UTIL_PATHS_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

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

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_PATHS_H_
