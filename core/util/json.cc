#include "core/util/json.h"

#include <cctype>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(absl::string_view s) : s_(s) {}

  absl::StatusOr<JsonValue> Document() {
    ASSIGN_OR_RETURN(JsonValue v, Value(0));
    SkipSpace();
    if (i_ != s_.size()) return Error("trailing characters");
    return v;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at byte ", i_, ": ", what));
  }
  void SkipSpace() {
    while (i_ < s_.size() &&
           (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' ||
            s_[i_] == '\r')) {
      ++i_;
    }
  }
  bool Consume(absl::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  absl::StatusOr<JsonValue> Value(int depth) {
    if (depth > kMaxDepth) return Error("nested too deeply");
    SkipSpace();
    if (i_ >= s_.size()) return Error("unexpected end");
    JsonValue v;
    const char c = s_[i_];
    if (c == '{') {
      v.kind = JsonValue::Kind::kObject;
      ++i_;
      SkipSpace();
      if (Consume("}")) return v;
      while (true) {
        SkipSpace();
        ASSIGN_OR_RETURN(std::string key, String());
        SkipSpace();
        if (!Consume(":")) return Error("expected ':'");
        ASSIGN_OR_RETURN(JsonValue member, Value(depth + 1));
        if (!v.object.emplace(std::move(key), std::move(member)).second) {
          return Error("duplicate key");
        }
        SkipSpace();
        if (Consume("}")) return v;
        if (!Consume(",")) return Error("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = JsonValue::Kind::kArray;
      ++i_;
      SkipSpace();
      if (Consume("]")) return v;
      while (true) {
        ASSIGN_OR_RETURN(JsonValue element, Value(depth + 1));
        v.array.push_back(std::move(element));
        SkipSpace();
        if (Consume("]")) return v;
        if (!Consume(",")) return Error("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.kind = JsonValue::Kind::kString;
      ASSIGN_OR_RETURN(v.text, String());
      return v;
    }
    if (Consume("true")) {
      v.kind = JsonValue::Kind::kBool;
      v.boolean = true;
      return v;
    }
    if (Consume("false")) {
      v.kind = JsonValue::Kind::kBool;
      return v;
    }
    if (Consume("null")) return v;
    return Number();
  }

  absl::StatusOr<JsonValue> Number() {
    const size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    const size_t digits = i_;
    while (i_ < s_.size() && (isdigit(static_cast<unsigned char>(s_[i_])) ||
                              s_[i_] == '.' || s_[i_] == 'e' ||
                              s_[i_] == 'E' || s_[i_] == '+' ||
                              s_[i_] == '-')) {
      ++i_;
    }
    if (i_ == digits || !isdigit(static_cast<unsigned char>(s_[digits]))) {
      i_ = start;
      return Error("expected a value");
    }
    JsonValue v;
    v.kind = JsonValue::Kind::kNumber;
    v.text = std::string(s_.substr(start, i_ - start));
    double check = 0;
    if (!absl::SimpleAtod(v.text, &check)) return Error("bad number");
    return v;
  }

  absl::StatusOr<std::string> String() {
    if (!Consume("\"")) return Error("expected a string");
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      const char c = s_[i_++];
      if (static_cast<unsigned char>(c) < 0x20) {
        return Error("control character in a string");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) break;
      const char e = s_[i_++];
      switch (e) {
        case '"': case '\\': case '/': out += e; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          uint32_t code = 0;
          if (i_ + 4 > s_.size() ||
              !absl::SimpleHexAtoi(s_.substr(i_, 4), &code) || code > 0x7f) {
            return Error("only ASCII \\u escapes are supported");
          }
          out += static_cast<char>(code);
          i_ += 4;
          break;
        }
        default: return Error("bad escape");
      }
    }
    if (!Consume("\"")) return Error("unterminated string");
    return out;
  }

  absl::string_view s_;
  size_t i_ = 0;
};

const char* KindName(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::kBool: return "a boolean";
    case JsonValue::Kind::kNumber: return "a number";
    case JsonValue::Kind::kString: return "a string";
    case JsonValue::Kind::kArray: return "an array";
    case JsonValue::Kind::kObject: return "an object";
    default: return "null";
  }
}

}  // namespace

absl::StatusOr<JsonValue> ParseJson(absl::string_view text) {
  return Parser(text).Document();
}

absl::StatusOr<const JsonValue*> JsonValue::Member(absl::string_view key,
                                                   Kind want) const {
  auto it = object.find(std::string(key));
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" missing"));
  }
  if (it->second.kind != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", key, "\" must be ", KindName(want)));
  }
  return &it->second;
}

absl::StatusOr<int64_t> JsonValue::Int(absl::string_view key) const {
  ASSIGN_OR_RETURN(const JsonValue* v, Member(key, Kind::kNumber));
  int64_t out = 0;
  if (!absl::SimpleAtoi(v->text, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", key, "\" must be an integer"));
  }
  return out;
}

absl::StatusOr<uint64_t> JsonValue::Uint(absl::string_view key) const {
  ASSIGN_OR_RETURN(const JsonValue* v, Member(key, Kind::kNumber));
  uint64_t out = 0;
  if (!absl::SimpleAtoi(v->text, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", key, "\" must be a non-negative integer"));
  }
  return out;
}

absl::StatusOr<double> JsonValue::Double(absl::string_view key) const {
  ASSIGN_OR_RETURN(const JsonValue* v, Member(key, Kind::kNumber));
  double out = 0;
  absl::SimpleAtod(v->text, &out);  // checked when parsed
  return out;
}

absl::StatusOr<std::string> JsonValue::String(absl::string_view key) const {
  ASSIGN_OR_RETURN(const JsonValue* v, Member(key, Kind::kString));
  return v->text;
}

std::string JsonQuoted(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace stronghold::core
