#include "server/address.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/util/paths.h"
#include "core/util/size.h"

namespace stronghold::server {

std::string DefaultSocketPath() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return core::DefaultSocketPath(runtime != nullptr ? runtime : "");
}

absl::StatusOr<int64_t> ParseBytes(const std::string& text) {
  return core::ParseSize("size", text);
}

}  // namespace stronghold::server
