#include "core/dist/c10d_communicator.h"

#include <torch/torch.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <vector>

#include "gtest/gtest.h"
#include "tests/core/dist/thread_ranks.h"

namespace stronghold::core {
namespace {

using testing::RunThreadRanks;
using testing::ThreadRanksOptions;

// Rank r's "gradient": random floats of a fixed seed per rank.
torch::Tensor Gradient(int rank, int64_t n) {
  torch::Generator gen = at::detail::createCPUGenerator(100 + rank);
  return torch::randn({n}, gen);
}

// The one-rank reference: ((g0 + g1) + g2) + ... in fp32.
torch::Tensor SequentialSum(int ranks, int64_t n) {
  torch::Tensor sum = Gradient(0, n).clone();
  for (int r = 1; r < ranks; ++r) sum.add_(Gradient(r, n));
  return sum;
}

bool BitEqual(const torch::Tensor& a, const torch::Tensor& b) {
  return a.numel() == b.numel() &&
         std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

TEST(C10dCommunicatorTest, TwoRanksReduceScatterIsTheSequentialSum) {
  constexpr int64_t kPiece = 1000;
  const torch::Tensor want = SequentialSum(2, 2 * kPiece);
  RunThreadRanks({.world_size = 2}, [&](int r, Communicator& comm) {
    EXPECT_EQ(comm.rank(), r);
    EXPECT_EQ(comm.world_size(), 2);
    torch::Tensor out = torch::empty({kPiece});
    ASSERT_TRUE(comm.ReduceScatterSum(Gradient(r, 2 * kPiece), out).ok());
    EXPECT_TRUE(BitEqual(out, want.narrow(0, r * kPiece, kPiece)));
  });
}

TEST(C10dCommunicatorTest, OrderedModeIsBitExactForFourRanks) {
  constexpr int64_t kPiece = 4096;
  const torch::Tensor want = SequentialSum(4, 4 * kPiece);
  RunThreadRanks(
      {.world_size = 4, .ordered = true}, [&](int r, Communicator& comm) {
        torch::Tensor out = torch::empty({kPiece});
        ASSERT_TRUE(comm.ReduceScatterSum(Gradient(r, 4 * kPiece), out).ok());
        EXPECT_TRUE(BitEqual(out, want.narrow(0, r * kPiece, kPiece)));
        torch::Tensor all = Gradient(r, 4 * kPiece);
        ASSERT_TRUE(comm.AllReduce(all, ReduceOp::kSum).ok());
        EXPECT_TRUE(BitEqual(all, want));
      });
}

TEST(C10dCommunicatorTest, GatherPiecesGivesEachRanksPieceInRankOrder) {
  constexpr int64_t kPiece = 7;
  RunThreadRanks({.world_size = 3}, [&](int r, Communicator& comm) {
    torch::Tensor out = torch::empty({3 * kPiece});
    ASSERT_TRUE(comm.GatherPieces(Gradient(r, 3 * kPiece), out).ok());
    for (int from = 0; from < 3; ++from) {
      EXPECT_TRUE(BitEqual(out.narrow(0, from * kPiece, kPiece),
                           Gradient(from, 3 * kPiece)
                               .narrow(0, r * kPiece, kPiece)
                               .contiguous()));
    }
  });
}

TEST(C10dCommunicatorTest, AllGatherInPlace) {
  constexpr int64_t kPiece = 5000;
  RunThreadRanks({.world_size = 3}, [&](int r, Communicator& comm) {
    torch::Tensor whole = torch::zeros({3 * kPiece});
    torch::Tensor mine = whole.narrow(0, r * kPiece, kPiece);
    mine.copy_(Gradient(r, kPiece));
    ASSERT_TRUE(comm.AllGather(mine, whole).ok());
    for (int from = 0; from < 3; ++from) {
      EXPECT_TRUE(BitEqual(whole.narrow(0, from * kPiece, kPiece),
                           Gradient(from, kPiece)));
    }
  });
}

TEST(C10dCommunicatorTest, HostCollectivesAddInRankOrder) {
  RunThreadRanks({.world_size = 4}, [&](int r, Communicator& comm) {
    std::vector<double> mine = {0.1 * (r + 1), 1e16 * (r % 2 ? 1 : -1)};
    std::vector<double> all(8);
    ASSERT_TRUE(comm.AllGatherHost(mine, absl::MakeSpan(all)).ok());
    for (int from = 0; from < 4; ++from)
      EXPECT_EQ(all[2 * from], 0.1 * (from + 1));
    ASSERT_TRUE(comm.AllReduceHost(absl::MakeSpan(mine), ReduceOp::kSum).ok());
    EXPECT_EQ(mine[0], ((0.1 + 0.2) + 0.30000000000000004) + 0.4);
    EXPECT_EQ(mine[1], 0.0);
    std::vector<int64_t> counts = {r, -r};
    ASSERT_TRUE(
        comm.AllReduceHost(absl::MakeSpan(counts), ReduceOp::kMax).ok());
    EXPECT_EQ(counts, (std::vector<int64_t>{3, 0}));
    EXPECT_TRUE(comm.Barrier().ok());
  });
}

TEST(C10dCommunicatorTest, MismatchedSizesAreAnErrorNotAnAbort) {
  RunThreadRanks({.world_size = 1}, [&](int, Communicator& comm) {
    const absl::Status s =
        comm.ReduceScatterSum(torch::zeros({10}), torch::zeros({3}));
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_NE(s.message().find("reduce-scatter"), std::string::npos) << s;
    // The communicator stays failed: its peers' positions are unknown.
    EXPECT_FALSE(comm.Barrier().ok());
  });
}

// One rank skips a host all-reduce: it hangs (keeps its communicator
// past the timeout) or dies (closes it). The other's collective fails with
// a code saying which, naming the collective, and does not hang.
void ExpectPeerFailure(bool hang, absl::StatusCode code) {
  const auto start = std::chrono::steady_clock::now();
  RunThreadRanks(
      {.world_size = 2, .timeout = std::chrono::milliseconds(1000)},
      [&](int r, Communicator& comm) {
        if (r == 1) {
          if (hang) std::this_thread::sleep_for(std::chrono::seconds(3));
          return;
        }
        std::vector<double> v = {1.0};
        const absl::Status s =
            comm.AllReduceHost(absl::MakeSpan(v), ReduceOp::kSum);
        EXPECT_EQ(s.code(), code) << s;
        EXPECT_NE(s.message().find("all-gather"), std::string::npos) << s;
        EXPECT_NE(s.message().find("rank 0 of 2"), std::string::npos) << s;
      });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

TEST(C10dCommunicatorTest, AHungPeerIsDeadlineExceeded) {
  ExpectPeerFailure(/*hang=*/true, absl::StatusCode::kDeadlineExceeded);
}

TEST(C10dCommunicatorTest, ADeadPeerIsUnavailable) {
  ExpectPeerFailure(/*hang=*/false, absl::StatusCode::kUnavailable);
}

TEST(C10dCommunicatorTest, RankOutsideTheWorldIsInvalid) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  C10dCommunicatorOptions o;
  o.rank = 2;
  o.world_size = 2;
  EXPECT_EQ(CreateC10dCommunicator(store, o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace stronghold::core
