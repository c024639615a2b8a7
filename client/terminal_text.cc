#include "client/terminal_text.h"

#include "absl/strings/str_format.h"

namespace stronghold::client {
namespace {

// The length of the valid UTF-8 sequence at the start of `text` and its code
// point; 0 when it is not one (overlong forms and surrogates included).
size_t DecodeUtf8(absl::string_view text, char32_t* code_point) {
  const auto byte = [&](size_t i) {
    return static_cast<unsigned char>(text[i]);
  };
  const unsigned char lead = byte(0);
  size_t length = 0;
  char32_t value = 0;
  char32_t smallest = 0;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, value = lead & 0x1f, smallest = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, value = lead & 0x0f, smallest = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, value = lead & 0x07, smallest = 0x10000;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    value = (value << 6) | (byte(i) & 0x3f);
  }
  if (value < smallest || value > 0x10ffff ||
      (value >= 0xd800 && value <= 0xdfff))
    return 0;
  *code_point = value;
  return length;
}

// C1 controls, and the bidirectional embeddings, overrides and isolates.
bool IsInvisibleControl(char32_t c) {
  return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
         (c >= 0x2066 && c <= 0x2069);
}

}  // namespace

std::string TerminalSafe(absl::string_view text) {
  std::string safe;
  safe.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      safe += "\\\\";
      ++i;
    } else if (c >= 0x20 && c < 0x7f) {
      safe += static_cast<char>(c);
      ++i;
    } else if (c < 0x80) {  // C0 controls and DEL
      absl::StrAppendFormat(&safe, "\\x%02x", c);
      ++i;
    } else if (char32_t code_point = 0;
               size_t length = DecodeUtf8(text.substr(i), &code_point)) {
      if (IsInvisibleControl(code_point)) {
        absl::StrAppendFormat(&safe, "\\u%04x",
                              static_cast<uint32_t>(code_point));
      } else {
        safe.append(text.data() + i, length);
      }
      i += length;
    } else {
      absl::StrAppendFormat(&safe, "\\x%02x", c);
      ++i;
    }
  }
  return safe;
}

}  // namespace stronghold::client
