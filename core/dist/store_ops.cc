#include "core/dist/store_ops.h"

#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace stronghold::core::dist {
namespace {

std::string FirstLine(const char* what) {
  const absl::string_view text(what != nullptr ? what : "");
  return std::string(text.substr(0, text.find('\n')));
}

// The status of the exception being handled.
absl::Status StoreError(absl::string_view doing) {
  try {
    throw;
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("rendezvous store: ", doing, ": ", FirstLine(e.what())));
  } catch (...) {
    return absl::UnavailableError(
        absl::StrCat("rendezvous store: ", doing, ": unknown exception"));
  }
}

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

}  // namespace

absl::Status StoreSet(c10d::Store& store, const std::string& key,
                      const std::string& value) {
  try {
    store.set(key, Bytes(value));
    return absl::OkStatus();
  } catch (...) {
    return StoreError(absl::StrCat("setting ", key));
  }
}

absl::StatusOr<std::vector<std::optional<std::string>>> StoreGetIfSet(
    c10d::Store& store, const std::vector<std::string>& keys,
    size_t max_bytes) {
  std::vector<std::optional<std::string>> out(keys.size());
  try {
    for (size_t i = 0; i < keys.size(); ++i) {
      // check() never blocks; get() of a key that check() saw set does not
      // either (keys are never deleted here).
      if (!store.check({keys[i]})) continue;
      const std::vector<uint8_t> value = store.get(keys[i]);
      if (value.size() > max_bytes) {
        return absl::FailedPreconditionError(
            absl::StrCat("rendezvous store: ", keys[i], " holds ", value.size(),
                         " bytes, more than the ", max_bytes, " expected"));
      }
      out[i] = std::string(value.begin(), value.end());
    }
  } catch (...) {
    return StoreError("reading");
  }
  return out;
}

absl::StatusOr<std::string> StoreSetOnce(c10d::Store& store,
                                         const std::string& key,
                                         const std::string& value,
                                         size_t max_bytes) {
  try {
    const std::vector<uint8_t> held =
        store.compareSet(key, std::vector<uint8_t>(), Bytes(value));
    if (held.size() > max_bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat("rendezvous store: ", key, " holds ", held.size(),
                       " bytes, more than the ", max_bytes, " expected"));
    }
    return std::string(held.begin(), held.end());
  } catch (...) {
    return StoreError(absl::StrCat("setting ", key));
  }
}

}  // namespace stronghold::core::dist
