// SHA-256 digests (OpenSSL's libcrypto), hex-encoded, for checkpoint
// manifests and downloads.
#ifndef STRONGHOLD_CORE_UTIL_SHA256_H_
#define STRONGHOLD_CORE_UTIL_SHA256_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace stronghold::core {

// Incremental SHA-256. Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t bytes);
  // Lower-case hex of the digest; the object must not be used afterwards.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string Sha256Hex(std::string_view data);

// Digest of a whole file, read in 1 MiB pieces.
absl::StatusOr<std::string> Sha256File(const std::string& path);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_SHA256_H_
