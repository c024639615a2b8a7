// TierReader (core/engine/tier_reader.h) on the host device and an in-memory
// block device: reads start ahead of the planned Takes as far as the ring and
// the pending updates allow, never out of order; every Take returns the newest
// data; a Take off the plan is still right and is counted.
#include "core/engine/tier_reader.h"

#include <memory>
#include <vector>

#include "core/device/host_device.h"
#include "gtest/gtest.h"
#include "storage/extent_store.h"
#include "storage/fault_injecting_block_device.h"
#include "storage/memory_block_device.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {
namespace {

constexpr int kBuffers = 6;        // buffer 0 is not on the tier
constexpr int64_t kFloats = 3000;  // 12,000 bytes: not a multiple of 4096
constexpr int kRing = 3;

class TierReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto memory = storage::NewMemoryBlockDevice(
        storage::MemoryBlockDeviceOptions(16 << 20));
    faulty_ =
        std::make_unique<storage::FaultInjectingBlockDevice>(std::move(memory));
    store_ = std::make_unique<storage::ExtentStore>(
        faulty_.get(), storage::ExtentStoreOptions());
    std::vector<storage::SpillItem> items;
    std::vector<TierReader::Source> sources(1);
    for (int b = 1; b < kBuffers; ++b) {
      items.push_back(
          {"layer" + std::to_string(b), {"weights"}, {kFloats * 4}});
      sources.push_back({b - 1, 0, kFloats * 4});
    }
    auto spill = storage::SpillStreamer::Create(store_.get(), items, {2});
    ASSERT_TRUE(spill.ok()) << spill.status();
    spill_ = *std::move(spill);
    for (int b = 1; b < kBuffers; ++b) Put(b, b);
    auto reader = TierReader::Create(&device_, spill_.get(), sources, kRing);
    ASSERT_TRUE(reader.ok()) << reader.status();
    reader_ = *std::move(reader);
  }

  void Put(int b, float value) {
    const std::vector<float> w(kFloats, value);
    const void* arrays[] = {w.data()};
    ASSERT_TRUE(spill_->Write(b - 1, arrays).ok());
  }

  // Takes b, checks it holds `value`, and sends it like the engine's H2D.
  void TakeAndSend(int b, float value) {
    absl::Status error;
    const float* data = static_cast<const float*>(reader_->Take(b, &error));
    ASSERT_TRUE(error.ok()) << error;
    EXPECT_EQ(data[0], value) << "buffer " << b;
    EXPECT_EQ(data[kFloats - 1], value) << "buffer " << b;
    std::vector<float> device_copy(kFloats);
    device_.Copy(Queue::kH2D, device_copy.data(), data, kFloats * 4, b);
    reader_->Sent(device_.Record(Queue::kH2D));
    device_.HostWait(device_.Record(Queue::kH2D));
  }

  const std::function<bool(int)> all_ready_ = [](int) { return true; };
  HostDevice device_{INT64_MAX};
  std::unique_ptr<storage::FaultInjectingBlockDevice> faulty_;
  std::unique_ptr<storage::ExtentStore> store_;
  std::unique_ptr<storage::SpillStreamer> spill_;
  std::unique_ptr<TierReader> reader_;
};

TEST_F(TierReaderTest, ReadsAheadAsFarAsTheRingAllows) {
  // Buffer 0 is not on the tier and leaves the plan.
  reader_->Plan({0, 1, 2, 3, 4, 5, 4, 3, 2, 1}, all_ready_);
  EXPECT_EQ(reader_->stats().read_bytes,
            kRing * kFloats * 4);  // started at once
  TakeAndSend(1, 1);
  reader_->Pump(all_ready_);  // buffer 1's copy is done: its entry is free
  EXPECT_EQ(reader_->stats().read_bytes, (kRing + 1) * kFloats * 4);
  for (int b : {2, 3, 4, 5, 4, 3, 2, 1}) {
    TakeAndSend(b, b);
    reader_->Pump(all_ready_);
  }
  EXPECT_EQ(reader_->stats().read_bytes, 9 * kFloats * 4);
  EXPECT_EQ(reader_->stats().unplanned, 0);
}

TEST_F(TierReaderTest, APendingUpdateHoldsBackItsReadAndThoseBehindIt) {
  bool updated = false;
  const std::function<bool(int)> ready = [&](int b) {
    return b != 2 || updated;
  };
  reader_->Plan({1, 2, 3}, ready);
  EXPECT_EQ(reader_->stats().read_bytes,
            kFloats * 4);  // 1 only: 3 waits behind 2
  Put(2, 20);              // the update lands on the tier
  updated = true;
  reader_->Pump(ready);
  EXPECT_EQ(reader_->stats().read_bytes, 3 * kFloats * 4);
  TakeAndSend(1, 1);
  TakeAndSend(2, 20);
  TakeAndSend(3, 3);
}

TEST_F(TierReaderTest, ATakeOffThePlanIsRightAndCounted) {
  reader_->Plan({1, 2, 3, 4}, all_ready_);
  TakeAndSend(1, 1);
  TakeAndSend(4, 4);  // 2 and 3 were read ahead for nothing
  EXPECT_EQ(reader_->stats().unplanned, 1);
  TakeAndSend(2, 2);  // the plan is gone: each Take now reads alone
  EXPECT_EQ(reader_->stats().unplanned, 2);
  reader_->Plan({3, 5}, all_ready_);  // a new plan is followed again
  TakeAndSend(3, 3);
  TakeAndSend(5, 5);
  EXPECT_EQ(reader_->stats().unplanned, 2);
}

TEST_F(TierReaderTest, AFailedReadIsTheTakesErrorAndTheNextPlanRecovers) {
  reader_->Plan({1}, all_ready_);
  TakeAndSend(1, 1);
  faulty_->FailNthRead(1);  // the next plan's first read: buffer 2's
  reader_->Plan({2, 3, 4}, all_ready_);
  absl::Status error;
  reader_->Take(2, &error);
  EXPECT_EQ(error.code(), absl::StatusCode::kDataLoss) << error;
  EXPECT_NE(std::string(error.message()).find("layer2.weights"),
            std::string::npos)
      << error;
  reader_->Sent(Event{});
  TakeAndSend(3, 3);
  reader_->Plan({2, 4}, all_ready_);  // drops 4's read in flight
  TakeAndSend(2, 2);
  TakeAndSend(4, 4);
}

}  // namespace
}  // namespace stronghold::core
