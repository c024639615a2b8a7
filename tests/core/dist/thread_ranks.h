// N ranks of a data-parallel job as threads of one test process: each gets
// its own C10dCommunicator (real Gloo over loopback) on one shared
// c10d::HashStore.
#ifndef STRONGHOLD_TESTS_CORE_DIST_THREAD_RANKS_H_
#define STRONGHOLD_TESTS_CORE_DIST_THREAD_RANKS_H_

#include <chrono>
#include <functional>

#include "core/dist/c10d_communicator.h"

namespace stronghold::core::testing {

struct ThreadRanksOptions {
  int world_size = 2;
  bool ordered = false;
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

// Runs body(rank, communicator) on world_size threads and joins them; a
// communicator that cannot be created fails the test (ADD_FAILURE).
void RunThreadRanks(const ThreadRanksOptions& options,
                    const std::function<void(int, Communicator&)>& body);

}  // namespace stronghold::core::testing

#endif  // STRONGHOLD_TESTS_CORE_DIST_THREAD_RANKS_H_
