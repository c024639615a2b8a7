#include "server/auth/token_file.h"

#include <openssl/crypto.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"
#include "server/auth/principal.h"

namespace stronghold::server {
namespace {

constexpr size_t kDigestHexChars = 64;
constexpr size_t kMaxPrincipalBytes = 256;
constexpr int64_t kMaxFileBytes = 1 << 20;

bool IsHex(absl::string_view text) {
  for (const char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsPrintable(absl::string_view text) {
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<TokenTable> TokenTable::Parse(absl::string_view text,
                                             absl::string_view source) {
  TokenTable table;
  std::vector<int> entry_lines;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    auto refuse = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " line ", number, ": ", why,
                       " (expected \"<sha256 hex> <principal>\")"));
    };
    line = absl::StripTrailingAsciiWhitespace(line);  // "\r" of CRLF files too
    if (line.empty() || line.front() == '#') continue;
    const size_t space = line.find_first_of(" \t");
    if (space == absl::string_view::npos)
      return refuse("no principal after the digest");
    const absl::string_view digest = line.substr(0, space);
    const absl::string_view principal =
        absl::StripLeadingAsciiWhitespace(line.substr(space));
    if (digest.size() != kDigestHexChars || !IsHex(digest)) {
      return refuse(absl::StrCat("the digest must be ", kDigestHexChars,
                                 " hex digits (a SHA-256), got ", digest.size(),
                                 " characters"));
    }
    if (principal.size() > kMaxPrincipalBytes || !IsPrintable(principal)) {
      return refuse(
          absl::StrCat("the principal must be printable ASCII of at most ",
                       kMaxPrincipalBytes, " bytes"));
    }
    if (absl::StartsWith(principal, "uid:") ||
        principal == kInsecureLoopbackPrincipal) {
      return refuse(absl::StrCat("the principal \"", principal,
                                 "\" is reserved (unix peers are \"uid:N\")"));
    }
    const std::string hex = absl::AsciiStrToLower(digest);
    for (size_t i = 0; i < table.entries_.size(); ++i) {
      if (table.entries_[i].sha256_hex == hex) {
        return refuse(
            absl::StrCat("the digest is already on line ", entry_lines[i]));
      }
    }
    table.entries_.push_back(
        {.sha256_hex = hex, .principal = std::string(principal)});
    entry_lines.push_back(number);
  }
  if (table.entries_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no token entries"));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  ASSIGN_OR_RETURN(const int64_t bytes, core::FileSize(path));
  if (bytes > kMaxFileBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is ", bytes, " bytes; a token file takes at most ",
                     kMaxFileBytes));
  }
  ASSIGN_OR_RETURN(const std::string text, core::ReadFile(path));
  return Parse(text, path);
}

std::optional<std::string> TokenTable::Find(absl::string_view token) const {
  const std::string hex =
      core::Sha256Hex(std::string_view(token.data(), token.size()));
  const Entry* found = nullptr;
  for (const Entry& entry : entries_) {
    if (CRYPTO_memcmp(entry.sha256_hex.data(), hex.data(), kDigestHexChars) ==
        0)
      found = &entry;
  }
  if (found == nullptr) return std::nullopt;
  return found->principal;
}

}  // namespace stronghold::server
