// Key-value operations on a c10d::Store that report failure as absl::Status
// instead of throwing, and read values as hostile input: the store's port is
// reachable by anyone who can reach rank 0's host (docs/security.md), so
// every value read is bounded in size before it is used, and parsed by the
// callers without trusting its form.
//
// Errors: UNAVAILABLE when the store cannot be reached (its host died, the
// network broke: c10::DistNetworkError and any other exception), with the
// first line of LibTorch's message; FAILED_PRECONDITION for a value larger
// than asked for.
//
// Thread safety: as the store's (c10d::TCPStore serializes its operations).
#ifndef STRONGHOLD_CORE_DIST_STORE_OPS_H_
#define STRONGHOLD_CORE_DIST_STORE_OPS_H_

#include <cstddef>
#include <optional>
#include <string>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <vector>

#include "absl/status/statusor.h"

namespace stronghold::core::dist {

using StorePtr = c10::intrusive_ptr<c10d::Store>;

absl::Status StoreSet(c10d::Store& store, const std::string& key,
                      const std::string& value);

// The values of `keys` that are set (nullopt for the others), each at most
// `max_bytes` (FAILED_PRECONDITION naming the key otherwise). Never waits
// for a key.
absl::StatusOr<std::vector<std::optional<std::string>>> StoreGetIfSet(
    c10d::Store& store, const std::vector<std::string>& keys, size_t max_bytes);

// Sets `key` to `value` unless it is set already; returns the value it holds
// afterwards (the first writer's), at most `max_bytes`.
absl::StatusOr<std::string> StoreSetOnce(c10d::Store& store,
                                         const std::string& key,
                                         const std::string& value,
                                         size_t max_bytes);

}  // namespace stronghold::core::dist

#endif  // STRONGHOLD_CORE_DIST_STORE_OPS_H_
