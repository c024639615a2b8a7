// C10dCommunicator: the Communicator (core/dist/communicator.h) over
// LibTorch's own c10d, given a Store that the caller set up (a TCPStore
// hosted by rank 0's daemon in production, namespaced per job; a HashStore
// shared by threads in tests). ProcessGroupGloo (from libtorch_cpu; its
// headers from Debian's libgloo-dev, never -lgloo) runs the host device's
// collectives and every host collective; in the CUDA build
// (//core/dist:c10d_communicator_cuda) ProcessGroupNCCL runs the collectives
// of CUDA tensors and the Gloo group sits on a PrefixStore beside it.
#ifndef STRONGHOLD_CORE_DIST_C10D_COMMUNICATOR_H_
#define STRONGHOLD_CORE_DIST_C10D_COMMUNICATOR_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "absl/status/statusor.h"
#include "core/dist/communicator.h"

namespace stronghold::core {

struct C10dCommunicatorOptions {
  int rank = 0;
  int world_size = 1;
  // Longest a collective may wait for its peers before it fails with
  // DEADLINE_EXCEEDED (a hung rank); a dead peer fails it at once.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // The address Gloo's transport binds to and announces to its peers
  // (through the store): this host's address on the network the ranks share.
  // Empty: Gloo's default (this host's name, else the loopback).
  std::string gloo_hostname;
  // Test-only: device reductions become a gather and a sum in global rank
  // order (bit-exact against one rank; slower, allocates).
  bool ordered = false;
};

// Connects to the other ranks through `store` (blocks until all
// world_size ranks have joined, or the timeout). INVALID_ARGUMENT for a rank
// outside [0, world_size); UNAVAILABLE or DEADLINE_EXCEEDED when the group
// cannot form. The CUDA build also creates the NCCL group (lazily connected
// at the first collective on a CUDA tensor).
absl::StatusOr<std::unique_ptr<Communicator>> CreateC10dCommunicator(
    const c10::intrusive_ptr<c10d::Store>& store,
    const C10dCommunicatorOptions& options);

// CreateC10dCommunicator's type: the daemon's main() hands it to the job
// manager, so that each binary links its own implementation (Gloo only, or
// Gloo and NCCL) and code shared by both (server/) links neither.
using CommunicatorFactory =
    std::function<absl::StatusOr<std::unique_ptr<Communicator>>(
        const c10::intrusive_ptr<c10d::Store>&,
        const C10dCommunicatorOptions&)>;

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DIST_C10D_COMMUNICATOR_H_
