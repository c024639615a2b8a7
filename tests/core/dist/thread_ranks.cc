#include "tests/core/dist/thread_ranks.h"

#include <memory>
#include <thread>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <vector>

#include "gtest/gtest.h"

namespace stronghold::core::testing {

void RunThreadRanks(const ThreadRanksOptions& options,
                    const std::function<void(int, Communicator&)>& body) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::thread> threads;
  for (int r = 0; r < options.world_size; ++r) {
    threads.emplace_back([&, r] {
      C10dCommunicatorOptions o;
      o.rank = r;
      o.world_size = options.world_size;
      o.timeout = options.timeout;
      o.gloo_hostname = "127.0.0.1";
      o.ordered = options.ordered;
      absl::StatusOr<std::unique_ptr<Communicator>> comm =
          CreateC10dCommunicator(store, o);
      if (!comm.ok()) {
        ADD_FAILURE() << "rank " << r << ": " << comm.status();
        return;
      }
      body(r, **comm);
    });
  }
  for (std::thread& t : threads) t.join();
}

}  // namespace stronghold::core::testing
