// SpillStreamer (storage/spill_streamer.h) on every backend: state staged
// ahead of use and written back, demand fetches and evictions when the order
// is not followed, re-acquiring during a write-back, and I/O faults surfacing
// at the right call.
#include "storage/spill_streamer.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/aligned_buffer.h"
#include "storage/fault_injecting_block_device.h"
#include "tests/storage/test_devices.h"

namespace stronghold::storage {
namespace {

using testing::AllBlockDevices;
using testing::DeviceFactory;
using ::testing::HasSubstr;

constexpr int kItems = 6;
constexpr int64_t kFloats = 50000;  // 200,000 bytes: not a block multiple

class SpillStreamerTest : public ::testing::TestWithParam<DeviceFactory> {
 protected:
  void SetUp() override { Open(/*slots=*/3); }

  void Open(int slots) {
    streamer_.reset();
    store_.reset();
    faulty_.reset();
    auto device =
        GetParam().open(testing::MakeTempDir(GetParam().name), 16 << 20);
    ASSERT_TRUE(device.ok()) << device.status();
    faulty_ = std::make_unique<FaultInjectingBlockDevice>(*std::move(device));
    store_ = std::make_unique<ExtentStore>(faulty_.get(),
                                           ExtentStoreOptions{64 << 10});
    std::vector<SpillItem> items;
    for (int i = 0; i < kItems; ++i) {
      items.push_back({absl::StrCat("layer", i),
                       {"exp_avg", "exp_avg_sq"},
                       {kFloats * 4, (kFloats + 37) * 4}});
    }
    auto streamer =
        SpillStreamer::Create(store_.get(), items, SpillStreamerOptions{slots});
    ASSERT_TRUE(streamer.ok()) << streamer.status();
    streamer_ = *std::move(streamer);
    EXPECT_EQ(streamer_->staging_bytes(),
              SpillStreamer::StagingBytes(items, slots, 4096));
    // Initial state: m = item, v = -item at every position.
    for (int i = 0; i < kItems; ++i) ASSERT_TRUE(Put(i, i).ok());
  }

  absl::Status Put(int item, float value) {
    std::vector<float> m(kFloats, value), v(kFloats + 37, -value);
    const void* arrays[] = {m.data(), v.data()};
    return streamer_->Write(item, arrays);
  }

  // Whether the staged arrays hold `value` (m) and -value (v).
  static bool Holds(const std::vector<void*>& arrays, float value) {
    const float* m = static_cast<const float*>(arrays[0]);
    const float* v = static_cast<const float*>(arrays[1]);
    for (int64_t k = 0; k < kFloats; ++k) {
      if (m[k] != value || v[k] != -value) return false;
    }
    return v[kFloats + 36] == -value;
  }
  static void Fill(const std::vector<void*>& arrays, float value) {
    std::fill_n(static_cast<float*>(arrays[0]), kFloats, value);
    std::fill_n(static_cast<float*>(arrays[1]), kFloats + 37, -value);
  }

  std::unique_ptr<FaultInjectingBlockDevice> faulty_;
  std::unique_ptr<ExtentStore> store_;
  std::unique_ptr<SpillStreamer> streamer_;
};

TEST_P(SpillStreamerTest, StagesInOrderAndWritesBack) {
  const std::vector<int> backward = {5, 4, 3, 2, 1, 0};
  for (int pass = 0; pass < 3; ++pass) {
    streamer_->Prefetch(backward);
    for (int i : backward) {
      auto arrays = streamer_->Acquire(i);
      ASSERT_TRUE(arrays.ok()) << arrays.status();
      EXPECT_TRUE(Holds(*arrays, i + 100 * pass)) << "item " << i;
      Fill(*arrays, i + 100 * (pass + 1));  // "the optimizer's update"
      ASSERT_TRUE(streamer_->Release(i).ok());
    }
  }
  ASSERT_TRUE(streamer_->Flush().ok());
  std::vector<float> m(kFloats), v(kFloats + 37);
  void* arrays[] = {m.data(), v.data()};
  ASSERT_TRUE(streamer_->Read(2, arrays).ok());
  EXPECT_EQ(m[123], 302);
  EXPECT_EQ(v[kFloats + 36], -302);
}

// A null array is left alone: written alone, one array replaces only itself
// (and a staged copy of the item is dropped, not served stale); read alone,
// it fills only its own buffer.
TEST_P(SpillStreamerTest, NullArraysAreSkipped) {
  streamer_->Prefetch(std::vector<int>{3});
  std::vector<float> v(kFloats + 37, 7);
  const void* only_v[] = {nullptr, v.data()};
  ASSERT_TRUE(streamer_->Write(3, only_v).ok());
  auto staged = streamer_->Acquire(3);
  ASSERT_TRUE(staged.ok()) << staged.status();
  EXPECT_EQ(static_cast<const float*>((*staged)[0])[kFloats - 1], 3);
  EXPECT_EQ(static_cast<const float*>((*staged)[1])[kFloats + 36], 7);
  ASSERT_TRUE(streamer_->Release(3).ok());
  std::vector<float> m(kFloats, -1);
  void* only_m[] = {m.data(), nullptr};
  ASSERT_TRUE(streamer_->Read(3, only_m).ok());
  EXPECT_EQ(m[0], 3);
  EXPECT_EQ(m[kFloats - 1], 3);
}

// The padded forms move aligned, rounded-up arrays in place: what one
// writes the other (and the bounce-buffer Read) reads back, a staged copy is
// not served stale, and a misaligned array is refused before any I/O.
TEST_P(SpillStreamerTest, PaddedTransfersUseTheCallersBuffers) {
  const auto padded = [](int64_t floats) {
    return AlignedBuffer((floats * 4 + 4095) / 4096 * 4096, 4096,
                         AlignedBuffer::HugePages::kNever);
  };
  AlignedBuffer m = padded(kFloats), v = padded(kFloats + 37);
  std::fill_n(reinterpret_cast<float*>(m.data()), kFloats, 9.0f);
  std::fill_n(reinterpret_cast<float*>(v.data()), kFloats + 37, -9.0f);
  streamer_->Prefetch(std::vector<int>{4});
  const void* out[] = {m.data(), v.data()};
  ASSERT_TRUE(streamer_->WritePadded(4, out).ok());
  auto staged = streamer_->Acquire(4);
  ASSERT_TRUE(staged.ok()) << staged.status();
  EXPECT_TRUE(Holds(*staged, 9));
  Fill(*staged, 11);
  ASSERT_TRUE(streamer_->Release(4).ok());
  void* in[] = {m.data(), v.data()};
  ASSERT_TRUE(streamer_->ReadPadded(4, in).ok());
  EXPECT_EQ(reinterpret_cast<float*>(m.data())[kFloats - 1], 11);
  EXPECT_EQ(reinterpret_cast<float*>(v.data())[kFloats + 36], -11);

  void* misaligned[] = {m.data() + 4, nullptr};
  const absl::Status refused = streamer_->ReadPadded(4, misaligned);
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("layer4.exp_avg"));
  const void* misaligned_out[] = {nullptr, v.data() + 4};
  EXPECT_EQ(streamer_->WritePadded(4, misaligned_out).code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> check(kFloats + 37);
  void* only_v[] = {nullptr, check.data()};
  ASSERT_TRUE(streamer_->Read(4, only_v).ok());
  EXPECT_EQ(check[kFloats + 36], -11);  // nothing was written
}

TEST_P(SpillStreamerTest, AnyOrderWorksEvenWithEverySlotStagedForLater) {
  streamer_->Prefetch(std::vector<int>{0, 1, 2});  // fills all 3 slots
  for (int i : {5, 0, 3, 2, 1, 4}) {
    auto arrays = streamer_->Acquire(i);
    ASSERT_TRUE(arrays.ok()) << arrays.status();
    EXPECT_TRUE(Holds(*arrays, i));
    ASSERT_TRUE(streamer_->Release(i).ok());
  }
  EXPECT_TRUE(streamer_->Flush().ok());
}

TEST_P(SpillStreamerTest, ReacquiringDuringTheWriteBackSeesTheNewData) {
  for (int round = 1; round <= 5; ++round) {
    auto arrays = streamer_->Acquire(1);
    ASSERT_TRUE(arrays.ok());
    EXPECT_TRUE(Holds(*arrays, 1 + 10 * (round - 1)));
    Fill(*arrays, 1 + 10 * round);
    ASSERT_TRUE(streamer_->Release(1).ok());
  }
  ASSERT_TRUE(streamer_->Flush().ok());
}

// Array reads beside the slots (the engine's H2D source): from the device,
// or, while a slot holds the newest data (written back or staged), from it.
TEST_P(SpillStreamerTest, ArrayReadsSeeTheNewestDataWhereverItIs) {
  AlignedBuffer v(4096 * ((4 * (kFloats + 37) + 4095) / 4096), 4096);
  const auto holds = [&](float value) {
    const float* f = reinterpret_cast<const float*>(v.data());
    return f[0] == -value && f[kFloats + 36] == -value;
  };
  auto read = [&](int item) {
    absl::StatusOr<uint64_t> t = streamer_->StartArrayRead(item, 1, v.data());
    return t.ok() ? streamer_->FinishArrayRead(*t) : t.status();
  };
  ASSERT_TRUE(read(4).ok());  // from the device
  EXPECT_TRUE(holds(4));
  // Acquired: the data is being changed.
  auto arrays = streamer_->Acquire(4);
  ASSERT_TRUE(arrays.ok());
  EXPECT_EQ(read(4).code(), absl::StatusCode::kFailedPrecondition);
  Fill(*arrays, 44);
  ASSERT_TRUE(streamer_->Release(4).ok());
  ASSERT_TRUE(read(4).ok());  // during or after its write-back: the new data
  EXPECT_TRUE(holds(44));
  ASSERT_TRUE(streamer_->Flush().ok());
  ASSERT_TRUE(read(4).ok());
  EXPECT_TRUE(holds(44));
  // Misuse names what is wrong.
  EXPECT_EQ(streamer_->StartArrayRead(4, 2, v.data()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(streamer_->StartArrayRead(kItems, 0, v.data()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(
          streamer_->StartArrayRead(4, 1, v.data() + 8).status().message()),
      HasSubstr("not aligned"));
  // A failed read is that read's error.
  faulty_->FailNthRead(1);
  EXPECT_EQ(read(3).code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(read(3).ok());
  EXPECT_TRUE(holds(3));
}

// A slot written back keeps the item as written: acquiring it again, or
// reading one of its arrays, takes no read, until the slot is needed for
// another item.
TEST_P(SpillStreamerTest, AWrittenBackSlotServesTheItemAgainWithoutARead) {
  auto arrays = streamer_->Acquire(2);
  ASSERT_TRUE(arrays.ok());
  Fill(*arrays, 22);
  ASSERT_TRUE(streamer_->Release(2).ok());
  ASSERT_TRUE(streamer_->Flush().ok());
  faulty_->FailAllReads();
  const SpillStreamer::Traffic before = streamer_->traffic();
  auto again = streamer_->Acquire(2);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(Holds(*again, 22));
  // Counted as reused, not read.
  const SpillStreamer::Traffic after = streamer_->traffic();
  EXPECT_EQ(after.read, before.read);
  EXPECT_EQ(after.reused - before.reused, (2 * kFloats + 37) * 4);
  ASSERT_TRUE(streamer_->Release(2).ok());
  ASSERT_TRUE(streamer_->Flush().ok());
  // Three other items take every slot over: item 2 is read from the device.
  faulty_->ClearFaults();
  for (int i : {0, 1, 3}) {
    ASSERT_TRUE(streamer_->Acquire(i).ok());
    ASSERT_TRUE(streamer_->Release(i).ok());
  }
  ASSERT_TRUE(streamer_->Flush().ok());
  faulty_->FailAllReads();
  EXPECT_EQ(streamer_->Acquire(2).status().code(), absl::StatusCode::kDataLoss);
}

TEST_P(SpillStreamerTest, MisuseIsAnErrorNotADeadlock) {
  Open(/*slots=*/2);
  ASSERT_TRUE(streamer_->Acquire(0).ok());
  EXPECT_EQ(streamer_->Acquire(0).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(streamer_->Acquire(1).ok());
  EXPECT_EQ(streamer_->Acquire(2).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(streamer_->Release(3).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Put(0, 7).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(streamer_->Release(0).ok());
  ASSERT_TRUE(streamer_->Release(1).ok());
}

TEST_P(SpillStreamerTest, ReadErrorFailsThatAcquireOnly) {
  faulty_->FailNthRead(1);
  const absl::Status failed = streamer_->Acquire(4).status();
  EXPECT_EQ(failed.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.message()), HasSubstr("errno 5"));
  auto again = streamer_->Acquire(4);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(Holds(*again, 4));
  ASSERT_TRUE(streamer_->Release(4).ok());
  EXPECT_TRUE(streamer_->Flush().ok());
}

TEST_P(SpillStreamerTest, WriteErrorIsStickyAndNamesTheCause) {
  auto arrays = streamer_->Acquire(3);
  ASSERT_TRUE(arrays.ok());
  faulty_->FailNthWrite(1);
  ASSERT_TRUE(streamer_->Release(3).ok());  // the failure comes later
  const absl::Status failed = streamer_->Flush();
  EXPECT_EQ(failed.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.message()), HasSubstr("errno 5"));
  EXPECT_EQ(streamer_->Acquire(2).status(), failed);
  EXPECT_EQ(streamer_->Flush(), failed);
}

TEST_P(SpillStreamerTest, FullDiskIsResourceExhausted) {
  auto arrays = streamer_->Acquire(5);
  ASSERT_TRUE(arrays.ok());
  faulty_->SetSpaceLimit(0);
  ASSERT_TRUE(streamer_->Release(5).ok());
  EXPECT_EQ(streamer_->Flush().code(), absl::StatusCode::kResourceExhausted);
}

TEST_P(SpillStreamerTest, SilentlyTornWriteBackIsCaughtOnTheNextRead) {
  auto arrays = streamer_->Acquire(2);
  ASSERT_TRUE(arrays.ok());
  Fill(*arrays, 42);
  faulty_->TearNthWrite(1, FaultInjectingBlockDevice::Tear::kSilent);
  ASSERT_TRUE(streamer_->Release(2).ok());
  ASSERT_TRUE(streamer_->Flush().ok());  // the disk said OK
  // (The slot still holds the data as written: read the device.)
  std::vector<float> m(kFloats), v(kFloats + 37);
  void* const arrays_out[] = {m.data(), v.data()};
  const absl::Status status = streamer_->Read(2, arrays_out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("layer2.exp_avg"));
}

TEST_P(SpillStreamerTest, AConsumerThreadAndAPrefetchingThread) {
  const std::vector<int> order = {5, 4, 3, 2, 1, 0};
  int bad = 0;
  for (int pass = 0; pass < 4; ++pass) {
    streamer_->Prefetch(order);
    std::thread consumer([&] {
      for (int i : order) {
        auto arrays = streamer_->Acquire(i);
        if (!arrays.ok() || !Holds(*arrays, i + pass)) ++bad;
        if (arrays.ok()) Fill(*arrays, i + pass + 1);
        if (!streamer_->Release(i).ok()) ++bad;
      }
    });
    consumer.join();
  }
  EXPECT_EQ(bad, 0);
  EXPECT_TRUE(streamer_->Flush().ok());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, SpillStreamerTest,
                         ::testing::ValuesIn(AllBlockDevices()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace stronghold::storage
