// Bearer tokens accepted on the TCP listener (strongholdd --token_file;
// docs/security.md).
//
// The file holds no token, only its SHA-256: one entry per line,
//   <sha256 of the token, 64 hex digits> <principal>
// e.g. "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 alice"
// (`printf %s "$TOKEN" | sha256sum`). Blank lines and lines starting with '#'
// are ignored. The principal is the rest of the line: printable ASCII, at
// most 256 bytes; it is what jobs submitted with the token are owned by, so
// it may equal a client certificate's subject to give one person both ways
// in, but never a unix peer's name ("uid:N") or "insecure-loopback".
#ifndef STRONGHOLD_SERVER_AUTH_TOKEN_FILE_H_
#define STRONGHOLD_SERVER_AUTH_TOKEN_FILE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::server {

class TokenTable {
 public:
  // INVALID_ARGUMENT naming `source` and the line for a malformed line or a
  // digest given twice; an empty table is refused too (no token could work).
  static absl::StatusOr<TokenTable> Parse(absl::string_view text,
                                          absl::string_view source);
  // Parse() of the file at `path` (at most 1 MiB).
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // The principal of `token` (as the client sent it, not hashed); nullopt
  // when no entry matches. Every entry's digest is compared in full, in
  // constant time, whatever matches.
  std::optional<std::string> Find(absl::string_view token) const;

  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string sha256_hex;  // lower case
    std::string principal;
  };
  std::vector<Entry> entries_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_AUTH_TOKEN_FILE_H_
