// Several ranks as threads of this process on 127.0.0.1, rank 0 on port 0.
#include "core/dist/rendezvous.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::core::dist {
namespace {

using ::testing::HasSubstr;

std::vector<SpecField> Fields(double lr = 1e-3) {
  return {{"model.layers", "2"},
          {"training.lr", std::to_string(lr)},
          {"training.batch", "8"}};
}

DistributedConfig Config(int world, int rank, int timeout_s = 10) {
  return {.master_addr = "127.0.0.1",
          .master_port = 0,
          .world_size = world,
          .rank = rank,
          .job_key = "test-job-key",
          .collective_timeout_s = timeout_s};
}

// Runs rank 0 and then ranks 1.. of `ranks` (a config and fields each) on
// their own threads; returns every rank's outcome. `before_others` runs once
// rank 0 listens, with its port. The sessions live until every rank is
// through (rank 0's holds the store the others may still be reading).
std::vector<absl::Status> RunRanks(
    std::vector<RendezvousOptions> ranks,
    std::function<void(int port)> before_others = nullptr) {
  std::promise<int> port;
  std::future<int> port_ready = port.get_future();
  ranks[0].on_listening = [&port](int p) { port.set_value(p); };
  std::vector<absl::StatusOr<std::unique_ptr<Session>>> sessions(ranks.size());
  std::vector<std::thread> threads;
  threads.emplace_back([&] { sessions[0] = Rendezvous(ranks[0]); });
  const int p = port_ready.get();
  if (before_others) before_others(p);
  for (size_t r = 1; r < ranks.size(); ++r) {
    threads.emplace_back([&, r] {
      ranks[r].config.master_port = p;
      sessions[r] = Rendezvous(ranks[r]);
    });
  }
  for (std::thread& t : threads) t.join();
  std::vector<absl::Status> out;
  for (const auto& s : sessions) out.push_back(s.status());
  return out;
}

TEST(RendezvousTest, RanksWithTheSameSpecMeet) {
  std::vector<RendezvousOptions> ranks;
  for (int r = 0; r < 3; ++r) ranks.push_back({Config(3, r), Fields()});
  for (const absl::Status& s : RunRanks(ranks)) EXPECT_TRUE(s.ok()) << s;
}

TEST(RendezvousTest, SessionsShareTheJobsPrefix) {
  std::promise<int> port;
  std::future<int> ready = port.get_future();
  RendezvousOptions rank0{Config(2, 0), Fields()};
  rank0.on_listening = [&](int p) { port.set_value(p); };
  absl::StatusOr<std::unique_ptr<Session>> s0, s1;
  std::thread t0([&] { s0 = Rendezvous(rank0); });
  RendezvousOptions rank1{Config(2, 1), Fields()};
  rank1.config.master_port = ready.get();
  s1 = Rendezvous(rank1);
  t0.join();
  ASSERT_TRUE(s0.ok()) << s0.status();
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ((*s0)->prefix(), (*s1)->prefix());
  EXPECT_EQ((*s1)->prefix().find("test-job-key"), std::string::npos)
      << "the key itself never reaches the store";
  absl::StatusOr<StorePtr> a = (*s0)->Connect();
  absl::StatusOr<StorePtr> b = (*s1)->Connect();
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(StoreSet(**a, "x", "from rank 0").ok());
  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      StoreGetIfSet(**b, {"x"}, 64);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)[0], "from rank 0");
}

TEST(RendezvousTest, MismatchNamesTheFieldOnEveryRank) {
  std::vector<RendezvousOptions> ranks;
  for (int r = 0; r < 3; ++r)
    ranks.push_back({Config(3, r), Fields(r == 2 ? 2e-3 : 1e-3)});
  for (const absl::Status& s : RunRanks(ranks)) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(s.message(),
                HasSubstr("rank 2's training.lr differs from rank 0's"));
  }
}

TEST(RendezvousTest, AMissingRankTimesOutNamed) {
  std::vector<RendezvousOptions> ranks;
  for (int r = 0; r < 3; ++r) ranks.push_back({Config(3, r, 2), Fields()});
  ranks.pop_back();  // rank 2 never comes
  const auto start = std::chrono::steady_clock::now();
  for (const absl::Status& s : RunRanks(ranks)) {
    EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
    EXPECT_THAT(s.message(), HasSubstr("rank 2 did not join within 2 s"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
}

TEST(RendezvousTest, NoRankZeroTimesOutNamingIt) {
  // A port where nothing listens: bind one, keep it unlistened.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t length = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
  RendezvousOptions rank1{Config(2, 1, 2), Fields()};
  rank1.config.master_port = ntohs(a.sin_port);
  const absl::Status s = Rendezvous(rank1).status();
  close(fd);
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_THAT(s.message(), HasSubstr("rank 0"));
}

TEST(RendezvousTest, RankZeroNeedsAnAddressOfItsHost) {
  RendezvousOptions rank0{Config(2, 0, 2), Fields()};
  rank0.config.master_addr = "192.0.2.1";  // TEST-NET-1: not ours
  const absl::Status s = Rendezvous(rank0).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(s.message(), HasSubstr("192.0.2.1"));
}

// Sends `bytes` to the port and closes.
void SendGarbage(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()),
            static_cast<ssize_t>(bytes.size()));
  usleep(100'000);
  close(fd);
}

TEST(RendezvousTest, StrangersOnThePortDoNotHurt) {
  std::vector<RendezvousOptions> ranks;
  for (int r = 0; r < 2; ++r) ranks.push_back({Config(2, r), Fields()});
  const std::vector<absl::Status> out = RunRanks(ranks, [](int port) {
    SendGarbage(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    SendGarbage(port, std::string(4096, '\xff'));
    // c10d's validation, then a SET whose key claims 2^62 bytes.
    std::string huge("\x00\xce\xf7\x85\x3c\x01", 6);
    huge += std::string("\x00\x00\x00\x00\x00\x00\x00\x40", 8);
    SendGarbage(port, huge);
  });
  for (const absl::Status& s : out) EXPECT_TRUE(s.ok()) << s;
}

}  // namespace
}  // namespace stronghold::core::dist
