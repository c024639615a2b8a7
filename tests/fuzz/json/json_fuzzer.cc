// core/util/json's strict reader on arbitrary bytes. Besides the sanitizers,
// it checks that whatever it accepts means one thing: written back out
// (strings through JsonQuoted, numbers as their text) the tree reads back
// identical, and the typed accessors never disagree with each other.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/util/json.h"
#include "tests/fuzz/fuzz_util.h"

namespace stronghold::fuzz {
namespace {

using core::JsonValue;

std::string Write(const JsonValue& v) {
  switch (v.kind) {
    case JsonValue::Kind::kNull:
      return "null";
    case JsonValue::Kind::kBool:
      return v.boolean ? "true" : "false";
    case JsonValue::Kind::kNumber:
      return v.text;
    case JsonValue::Kind::kString:
      return core::JsonQuoted(v.text);
    case JsonValue::Kind::kArray: {
      std::string out = "[";
      for (const JsonValue& e : v.array)
        absl::StrAppend(&out, out.size() > 1 ? "," : "", Write(e));
      return out + "]";
    }
    case JsonValue::Kind::kObject: {
      std::string out = "{";
      for (const auto& [k, e] : v.object) {
        absl::StrAppend(&out, out.size() > 1 ? "," : "", core::JsonQuoted(k),
                        ":", Write(e));
      }
      return out + "}";
    }
  }
  return "";
}

bool Same(const JsonValue& a, const JsonValue& b) {
  if (a.kind != b.kind || a.boolean != b.boolean || a.text != b.text ||
      a.array.size() != b.array.size() || a.object.size() != b.object.size()) {
    return false;
  }
  for (size_t i = 0; i < a.array.size(); ++i) {
    if (!Same(a.array[i], b.array[i])) return false;
  }
  for (auto i = a.object.begin(), j = b.object.begin(); i != a.object.end();
       ++i, ++j) {
    if (i->first != j->first || !Same(i->second, j->second)) return false;
  }
  return true;
}

void CheckNumbers(const JsonValue& v) {
  if (v.kind == JsonValue::Kind::kNumber) {
    const auto i = v.AsInt64("n");
    const auto u = v.AsUint64("n");
    const auto d = v.AsDouble("n");
    if (i.ok() && u.ok())
      FUZZ_CHECK(*i >= 0 && static_cast<uint64_t>(*i) == *u, v.text);
    if (i.ok() || u.ok())
      FUZZ_CHECK(d.ok(), v.text);  // every 64-bit integer is a finite double
    if (d.ok()) FUZZ_CHECK(std::isfinite(*d), v.text);
  }
  for (const JsonValue& e : v.array) CheckNumbers(e);
  for (const auto& [k, e] : v.object) CheckNumbers(e);
}

}  // namespace
}  // namespace stronghold::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stronghold;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<core::JsonValue> v = core::ParseJson(text);
  if (!v.ok()) {
    FUZZ_CHECK(v.status().code() == absl::StatusCode::kInvalidArgument,
               v.status().ToString());
    FUZZ_CHECK(absl::StrContains(v.status().message(), "invalid JSON at byte "),
               v.status().ToString());
    return 0;
  }
  fuzz::CheckNumbers(*v);
  const std::string again = fuzz::Write(*v);
  absl::StatusOr<core::JsonValue> back = core::ParseJson(again);
  FUZZ_CHECK(back.ok(),
             "written back, it does not parse: ", back.status().ToString(), " ",
             again);
  FUZZ_CHECK(fuzz::Same(*v, *back),
             "written back, it reads differently: ", again);
  return 0;
}
