// The one JSON reader of the project: checkpoint manifests and safetensors
// headers, both of which may come from a damaged disk or a stranger, go
// through it. It is strict RFC 8259 and refuses everything else, because a
// file that a lenient reader "repairs" may mean something other than what
// its writer meant:
//   - no trailing commas, comments, NaN/Infinity, leading zeros, '+' signs,
//     byte-order marks or single quotes;
//   - strings must be valid UTF-8 (no overlong forms, no encoded surrogates,
//     nothing above U+10FFFF) with only the RFC's escapes; \u escapes are
//     decoded to UTF-8, a surrogate pair to one code point, and a lone
//     surrogate is refused;
//   - an object with the same key twice (after unescaping) is refused;
//   - nesting and size are bounded (JsonOptions), so a hostile document can
//     neither exhaust the stack nor make the reader allocate without bound.
// Every parse error is INVALID_ARGUMENT "invalid JSON at byte N: what".
//
// Numbers are kept as their text, so 64-bit integers (seeds, safetensors
// offsets) and doubles round-trip exactly; the typed accessors convert them
// and refuse what does not fit (an integer beyond int64/uint64, a fraction
// where an integer is wanted, a double that overflows), never wrapping or
// rounding silently.
//
// Thread safety: ParseJson is reentrant; a JsonValue is a plain value.
#ifndef STRONGHOLD_CORE_UTIL_JSON_H_
#define STRONGHOLD_CORE_UTIL_JSON_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

struct JsonOptions {
  // Longest document accepted, in bytes.
  size_t max_bytes = size_t{64} << 20;
  // Most values (of any kind, members and elements included) accepted. Each
  // costs ~200 bytes of JsonValue and map node while two bytes of text ("0,")
  // make one, so this, not max_bytes, bounds the memory a document takes:
  // ~200 MiB at the default. The largest safetensors header this project
  // writes (1024 layers' optimizer state) has ~250k values.
  int64_t max_values = int64_t{1} << 20;
  // Deepest nesting of arrays and objects accepted (the top level is 1).
  // The parser recurses once per level.
  int max_depth = 64;
};

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  std::string text;  // kString: the string (UTF-8); kNumber: as written
  std::vector<JsonValue> array;
  std::map<std::string, JsonValue> object;
  size_t offset = 0;  // byte offset of the value in the document, for errors

  // This number as an integer of the type: INVALID_ARGUMENT naming `what`
  // and the offset when the value is not a number, has a fraction or an
  // exponent, or does not fit.
  absl::StatusOr<int64_t> AsInt64(absl::string_view what) const;
  absl::StatusOr<uint64_t> AsUint64(absl::string_view what) const;
  // This number as a double: refused when it overflows to infinity
  // (a number too small for a double reads as 0 or a subnormal, as in C).
  absl::StatusOr<double> AsDouble(absl::string_view what) const;

  // Typed access to an object's members: INVALID_ARGUMENT naming `key`
  // when the member is missing, of another kind, or out of range.
  absl::StatusOr<const JsonValue*> Member(absl::string_view key,
                                          Kind kind) const;
  // An integer member in [min, max] (both inclusive).
  absl::StatusOr<int64_t> Int(
      absl::string_view key, int64_t min = std::numeric_limits<int64_t>::min(),
      int64_t max = std::numeric_limits<int64_t>::max()) const;
  absl::StatusOr<uint64_t> Uint(absl::string_view key) const;
  absl::StatusOr<double> Double(absl::string_view key) const;
  absl::StatusOr<std::string> String(absl::string_view key) const;
};

// "a boolean", "an object", ... for error messages.
const char* JsonKindName(JsonValue::Kind kind);

// Parses one JSON document (surrounding whitespace allowed).
// INVALID_ARGUMENT with the byte offset of the first error.
absl::StatusOr<JsonValue> ParseJson(absl::string_view text,
                                    const JsonOptions& options = {});

// `s` as a JSON string literal, quotes included; control characters, '"'
// and '\' escaped. `s` must be valid UTF-8 for the result to parse.
std::string JsonQuoted(absl::string_view s);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_JSON_H_
