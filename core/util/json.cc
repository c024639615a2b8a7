#include "core/util/json.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

// Recursive descent over RFC 8259's grammar; `i_` is the offset every error
// names.
class Parser {
 public:
  Parser(absl::string_view s, const JsonOptions& options)
      : s_(s), options_(options) {}

  absl::StatusOr<JsonValue> Document() {
    if (s_.size() > options_.max_bytes) {
      return Error(absl::StrCat("the document is ", s_.size(),
                                " bytes, more than the limit of ",
                                options_.max_bytes));
    }
    ASSIGN_OR_RETURN(JsonValue v, Value(/*depth=*/1));
    SkipSpace();
    if (i_ != s_.size()) return Error("trailing characters after the value");
    return v;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at byte ", i_, ": ", what));
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  unsigned char Peek() const { return static_cast<unsigned char>(s_[i_]); }
  void SkipSpace() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\n' || Peek() == '\t' ||
                        Peek() == '\r')) {
      ++i_;
    }
  }
  bool Consume(absl::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  absl::StatusOr<JsonValue> Value(int depth) {
    SkipSpace();
    if (AtEnd()) return Error("unexpected end, expected a value");
    if (++values_ > options_.max_values) {
      return Error(absl::StrCat("more than ", options_.max_values, " values"));
    }
    JsonValue v;
    v.offset = i_;
    const char c = s_[i_];
    if (c == '{' || c == '[') {
      if (depth > options_.max_depth) {
        return Error(absl::StrCat("nested deeper than ", options_.max_depth));
      }
      return c == '{' ? Object(std::move(v), depth)
                      : Array(std::move(v), depth);
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
    if (c == '-' || absl::ascii_isdigit(c)) return Number(std::move(v));
    return Error(
        "expected a value (object, array, string, number, true, false or "
        "null)");
  }

  absl::StatusOr<JsonValue> Object(JsonValue v, int depth) {
    v.kind = JsonValue::Kind::kObject;
    ++i_;  // '{'
    SkipSpace();
    if (Consume("}")) return v;
    while (true) {
      SkipSpace();
      const size_t key_at = i_;
      if (AtEnd() || Peek() != '"') return Error("expected a string key");
      ASSIGN_OR_RETURN(std::string key, String());
      SkipSpace();
      if (!Consume(":")) return Error("expected ':'");
      ASSIGN_OR_RETURN(JsonValue member, Value(depth + 1));
      auto [it, inserted] = v.object.emplace(std::move(key), std::move(member));
      if (!inserted) {
        i_ = key_at;
        return Error(absl::StrCat("duplicate key ", JsonQuoted(it->first)));
      }
      SkipSpace();
      if (Consume("}")) return v;
      if (!Consume(",")) return Error("expected ',' or '}'");
    }
  }

  absl::StatusOr<JsonValue> Array(JsonValue v, int depth) {
    v.kind = JsonValue::Kind::kArray;
    ++i_;  // '['
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

  // number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT )
  absl::StatusOr<JsonValue> Number(JsonValue v) {
    const size_t start = i_;
    Consume("-");
    if (AtEnd() || !absl::ascii_isdigit(Peek())) {
      return Error("expected a digit");
    }
    if (Consume("0")) {
      if (!AtEnd() && absl::ascii_isdigit(Peek())) {
        return Error("leading zeros are not allowed");
      }
    } else {
      SkipDigits();
    }
    if (Consume(".")) {
      if (AtEnd() || !absl::ascii_isdigit(Peek())) {
        return Error("expected a digit after '.'");
      }
      SkipDigits();
    }
    if (Consume("e") || Consume("E")) {
      if (!Consume("+")) Consume("-");
      if (AtEnd() || !absl::ascii_isdigit(Peek())) {
        return Error("expected a digit in the exponent");
      }
      SkipDigits();
    }
    v.kind = JsonValue::Kind::kNumber;
    v.text = std::string(s_.substr(start, i_ - start));
    return v;
  }
  void SkipDigits() {
    while (!AtEnd() && absl::ascii_isdigit(Peek())) ++i_;
  }

  absl::StatusOr<std::string> String() {
    ++i_;  // '"'
    std::string out;
    while (true) {
      if (AtEnd()) return Error("unterminated string");
      const unsigned char c = Peek();
      if (c == '"') {
        ++i_;
        return out;
      }
      if (c < 0x20) return Error("control character in a string");
      if (c == '\\') {
        RETURN_IF_ERROR(Escape(out));
      } else if (c < 0x80) {
        out += static_cast<char>(c);
        ++i_;
      } else {
        RETURN_IF_ERROR(Utf8Sequence(out));
      }
    }
  }

  // One escape sequence at i_ (the backslash), appended to `out` as UTF-8.
  absl::Status Escape(std::string& out) {
    ++i_;
    if (AtEnd()) return Error("unterminated string");
    const char e = s_[i_];
    const char* simple = nullptr;
    switch (e) {
      case '"':
        simple = "\"";
        break;
      case '\\':
        simple = "\\";
        break;
      case '/':
        simple = "/";
        break;
      case 'b':
        simple = "\b";
        break;
      case 'f':
        simple = "\f";
        break;
      case 'n':
        simple = "\n";
        break;
      case 'r':
        simple = "\r";
        break;
      case 't':
        simple = "\t";
        break;
      case 'u':
        break;
      default:
        return Error(
            "invalid escape (only \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
    }
    if (simple != nullptr) {
      out += simple;
      ++i_;
      return absl::OkStatus();
    }
    ++i_;
    ASSIGN_OR_RETURN(uint32_t code, Hex4());
    if (code >= 0xDC00 && code <= 0xDFFF) {
      return Error("a low surrogate without a high one before it");
    }
    if (code >= 0xD800 && code <= 0xDBFF) {
      if (!Consume("\\u"))
        return Error("a high surrogate without a low one after it");
      ASSIGN_OR_RETURN(uint32_t low, Hex4());
      if (low < 0xDC00 || low > 0xDFFF) {
        return Error("a high surrogate without a low one after it");
      }
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    AppendUtf8(code, out);
    return absl::OkStatus();
  }

  absl::StatusOr<uint32_t> Hex4() {
    uint32_t code = 0;
    for (int k = 0; k < 4; ++k, ++i_) {
      if (AtEnd() || !absl::ascii_isxdigit(Peek())) {
        return Error("expected 4 hex digits after \\u");
      }
      const char h = absl::ascii_tolower(s_[i_]);
      code = code * 16 + (absl::ascii_isdigit(h) ? h - '0' : h - 'a' + 10);
    }
    return code;
  }

  static void AppendUtf8(uint32_t code, std::string& out) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  // One multi-byte UTF-8 sequence at i_, checked (RFC 3629, Table 3-7 of
  // Unicode: no overlong forms, no surrogates, nothing past U+10FFFF) and
  // copied to `out`.
  absl::Status Utf8Sequence(std::string& out) {
    const unsigned char lead = Peek();
    int length = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) lo = 0xA0;  // overlong
      if (lead == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) lo = 0x90;  // overlong
      if (lead == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return Error("invalid UTF-8 (a byte that cannot start a character)");
    }
    for (int k = 1; k < length; ++k) {
      if (i_ + k >= s_.size())
        return Error("invalid UTF-8 (truncated character)");
      const unsigned char b = static_cast<unsigned char>(s_[i_ + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) {
        return Error(
            "invalid UTF-8 (bad continuation byte, overlong form, surrogate or "
            "past U+10FFFF)");
      }
    }
    out.append(s_.data() + i_, length);
    i_ += length;
    return absl::OkStatus();
  }

  absl::string_view s_;
  const JsonOptions& options_;
  size_t i_ = 0;
  int64_t values_ = 0;
};

absl::Status ValueError(const JsonValue& v, absl::string_view what,
                        absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " (at byte ", v.offset, ") ", problem));
}

bool IsIntegerText(absl::string_view text) {
  return text.find_first_of(".eE") == absl::string_view::npos;
}

}  // namespace

const char* JsonKindName(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::kBool:
      return "a boolean";
    case JsonValue::Kind::kNumber:
      return "a number";
    case JsonValue::Kind::kString:
      return "a string";
    case JsonValue::Kind::kArray:
      return "an array";
    case JsonValue::Kind::kObject:
      return "an object";
    default:
      return "null";
  }
}

absl::StatusOr<JsonValue> ParseJson(absl::string_view text,
                                    const JsonOptions& options) {
  return Parser(text, options).Document();
}

absl::StatusOr<int64_t> JsonValue::AsInt64(absl::string_view what) const {
  if (kind != Kind::kNumber) return ValueError(*this, what, "must be a number");
  if (!IsIntegerText(text))
    return ValueError(*this, what, "must be an integer");
  int64_t out = 0;
  if (!absl::SimpleAtoi(text, &out)) {
    return ValueError(
        *this, what,
        absl::StrCat(text, " does not fit in a 64-bit signed integer"));
  }
  return out;
}

absl::StatusOr<uint64_t> JsonValue::AsUint64(absl::string_view what) const {
  if (kind != Kind::kNumber) return ValueError(*this, what, "must be a number");
  if (!IsIntegerText(text) || text[0] == '-') {
    return ValueError(*this, what, "must be a non-negative integer");
  }
  uint64_t out = 0;
  if (!absl::SimpleAtoi(text, &out)) {
    return ValueError(
        *this, what,
        absl::StrCat(text, " does not fit in a 64-bit unsigned integer"));
  }
  return out;
}

absl::StatusOr<double> JsonValue::AsDouble(absl::string_view what) const {
  if (kind != Kind::kNumber) return ValueError(*this, what, "must be a number");
  double out = 0;
  if (!absl::SimpleAtod(text, &out) || !std::isfinite(out)) {
    return ValueError(*this, what,
                      absl::StrCat(text, " does not fit in a double"));
  }
  return out;
}

absl::StatusOr<const JsonValue*> JsonValue::Member(absl::string_view key,
                                                   Kind want) const {
  const std::string name = absl::StrCat("\"", key, "\"");
  if (kind != Kind::kObject)
    return ValueError(*this, name, "is looked up in a non-object");
  auto it = object.find(std::string(key));
  if (it == object.end()) {
    return ValueError(*this, name, "missing from this object");
  }
  if (it->second.kind != want) {
    return ValueError(it->second, name,
                      absl::StrCat("must be ", JsonKindName(want)));
  }
  return &it->second;
}

absl::StatusOr<int64_t> JsonValue::Int(absl::string_view key, int64_t min,
                                       int64_t max) const {
  ASSIGN_OR_RETURN(const JsonValue* v, Member(key, Kind::kNumber));
  const std::string name = absl::StrCat("\"", key, "\"");
  ASSIGN_OR_RETURN(int64_t out, v->AsInt64(name));
  if (out < min || out > max) {
    return ValueError(
        *v, name, absl::StrCat("is ", out, ", outside [", min, ", ", max, "]"));
  }
  return out;
}

absl::StatusOr<uint64_t> JsonValue::Uint(absl::string_view key) const {
  ASSIGN_OR_RETURN(const JsonValue* v, Member(key, Kind::kNumber));
  return v->AsUint64(absl::StrCat("\"", key, "\""));
}

absl::StatusOr<double> JsonValue::Double(absl::string_view key) const {
  ASSIGN_OR_RETURN(const JsonValue* v, Member(key, Kind::kNumber));
  return v->AsDouble(absl::StrCat("\"", key, "\""));
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
