// A small JSON reader for the files core/ writes itself (checkpoint
// manifests). It keeps numbers as their text so 64-bit integers (seeds) and
// doubles round-trip exactly, and it refuses anything that is not strict
// JSON, because a checkpoint manifest that does not parse is damaged.
//
// Not a general-purpose library: no \u escapes beyond ASCII, no comments,
// depth limited to 64.
#ifndef STRONGHOLD_CORE_UTIL_JSON_H_
#define STRONGHOLD_CORE_UTIL_JSON_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;  // kString: the string; kNumber: the number as written
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;

  // Typed access for readers: INVALID_ARGUMENT naming `key` when the member
  // is missing or of another kind. Only on objects.
  absl::StatusOr<const JsonValue*> Member(absl::string_view key,
                                          Kind kind) const;
  absl::StatusOr<int64_t> Int(absl::string_view key) const;
  absl::StatusOr<uint64_t> Uint(absl::string_view key) const;
  absl::StatusOr<double> Double(absl::string_view key) const;
  absl::StatusOr<std::string> String(absl::string_view key) const;
};

// Parses one JSON document (surrounding whitespace allowed).
// INVALID_ARGUMENT with the byte offset of the first error.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text);

// `s` as a JSON string literal, quotes included.
std::string JsonQuoted(absl::string_view s);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_JSON_H_
