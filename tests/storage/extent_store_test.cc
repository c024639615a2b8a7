// Checksummed extents (storage/extent_store.h) on every backend: round trips,
// and corruption of every kind the trailer exists to catch — a flipped byte
// in the data or in the trailer, a lost write, a misdirected write, a
// silently torn write — each a DATA_LOSS naming the extent.
#include "storage/extent_store.h"

#include <cstring>
#include <random>
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

constexpr int64_t kCapacity = 8 << 20;
constexpr int64_t kBlock = 64 << 10;  // checksum granularity in these tests
// Three blocks and a bit, not a multiple of the alignment.
constexpr int64_t kExtentBytes = 3 * kBlock + 1000;

AlignedBuffer Pattern(int64_t bytes, uint32_t seed) {
  AlignedBuffer buffer(bytes);
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < bytes; ++i)
    buffer.data()[i] = static_cast<char>(rng());
  return buffer;
}

class ExtentStoreTest : public ::testing::TestWithParam<DeviceFactory> {
 protected:
  void SetUp() override {
    auto device =
        GetParam().open(testing::MakeTempDir(GetParam().name), kCapacity);
    ASSERT_TRUE(device.ok()) << device.status();
    faulty_ = std::make_unique<FaultInjectingBlockDevice>(*std::move(device));
    store_ = std::make_unique<ExtentStore>(faulty_.get(),
                                           ExtentStoreOptions{kBlock});
  }

  // A written extent and the data written.
  ExtentId WrittenExtent(const std::string& name, const AlignedBuffer& data) {
    absl::StatusOr<ExtentId> id = store_->Allocate(kExtentBytes, name);
    EXPECT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(store_->Write(*id, data.data()).ok());
    return *id;
  }

  // Flips one byte on the device, below the store, through the raw device.
  void FlipByteAt(int64_t device_offset) {
    BlockDevice* raw = faulty_->base();
    const int64_t page = device_offset / 4096 * 4096;
    AlignedBuffer buffer(4096);
    ASSERT_TRUE(raw->Read(page, buffer.data(), 4096).ok());
    buffer.data()[device_offset - page] ^= 0x10;
    ASSERT_TRUE(raw->Write(page, buffer.data(), 4096).ok());
  }

  // Raw copy of the extent's device bytes (data and trailer).
  AlignedBuffer RawCopy(ExtentId id) {
    const ExtentInfo info = store_->info(id);
    AlignedBuffer raw(info.stored_bytes);
    EXPECT_TRUE(
        faulty_->base()->Read(info.offset, raw.data(), raw.size()).ok());
    return raw;
  }
  void RawRestore(ExtentId id, const AlignedBuffer& raw) {
    EXPECT_TRUE(faulty_->base()
                    ->Write(store_->info(id).offset, raw.data(), raw.size())
                    .ok());
  }

  std::unique_ptr<FaultInjectingBlockDevice> faulty_;
  std::unique_ptr<ExtentStore> store_;
};

TEST_P(ExtentStoreTest, RoundTrips) {
  const AlignedBuffer data = Pattern(kExtentBytes, 1);
  const ExtentId id = WrittenExtent("layer0.exp_avg", data);
  AlignedBuffer back(store_->info(id).buffer_bytes);
  ASSERT_TRUE(store_->Read(id, back.data()).ok());
  EXPECT_EQ(std::memcmp(back.data(), data.data(), kExtentBytes), 0);
}

TEST_P(ExtentStoreTest, LaysExtentsOutOnBlockBoundaries) {
  auto a = store_->Allocate(kExtentBytes, "a");
  auto b = store_->Allocate(10, "b");
  auto c = store_->Allocate(kExtentBytes, "c");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  const int64_t stored = ExtentStore::StoredBytes(kExtentBytes, 4096, kBlock);
  EXPECT_EQ(store_->info(*a).stored_bytes, stored);
  EXPECT_EQ(stored, 4 * kBlock);  // data and trailer rounded to blocks
  EXPECT_EQ(store_->info(*c).offset % kBlock, 0);
  EXPECT_EQ(store_->allocated_bytes(),
            2 * stored + ExtentStore::StoredBytes(10, 4096, kBlock));
}

TEST_P(ExtentStoreTest, RunsOutOfSpaceWithTheBytesNeeded) {
  const int64_t capacity = faulty_->capacity();
  auto big = store_->Allocate(capacity, "too_big");
  ASSERT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()),
              HasSubstr(absl::StrCat(
                  "needs ", ExtentStore::StoredBytes(capacity, 4096, kBlock))));
}

TEST_P(ExtentStoreTest, ReadingAnUnwrittenExtentIsAnError) {
  auto id = store_->Allocate(kExtentBytes, "fresh");
  ASSERT_TRUE(id.ok());
  AlignedBuffer back(store_->info(*id).buffer_bytes);
  EXPECT_EQ(store_->Read(*id, back.data()).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_P(ExtentStoreTest, FlippedDataByteIsCaught) {
  const ExtentId id = WrittenExtent("layer1.param", Pattern(kExtentBytes, 2));
  const int64_t offset = store_->info(id).offset + 2 * kBlock + 77;
  FlipByteAt(offset);
  AlignedBuffer back(store_->info(id).buffer_bytes);
  const absl::Status status = store_->Read(id, back.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("layer1.param"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("CRC32C mismatch in block 2 (bytes [",
                                     2 * kBlock, ", ", 3 * kBlock, ")")));
  // The file and the offset in it, as the device's own errors name them.
  const IoLocation where = faulty_->Locate(offset - 77);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr(absl::StrCat("offset ", where.offset, " of ",
                                     where.file, ")")));
  // The last, partial block is covered too.
  FlipByteAt(offset);  // undo
  ASSERT_TRUE(store_->Read(id, back.data()).ok());
  FlipByteAt(store_->info(id).offset + kExtentBytes - 1);
  EXPECT_THAT(std::string(store_->Read(id, back.data()).message()),
              HasSubstr("mismatch in block 3"));
}

TEST_P(ExtentStoreTest, FlippedTrailerByteIsCaught) {
  const ExtentId id =
      WrittenExtent("layer1.exp_avg_sq", Pattern(kExtentBytes, 3));
  const ExtentInfo info = store_->info(id);
  FlipByteAt(info.offset + info.buffer_bytes + 20);
  AlignedBuffer back(info.buffer_bytes);
  const absl::Status status = store_->Read(id, back.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("trailer"));
}

TEST_P(ExtentStoreTest, LostWriteIsCaught) {
  const ExtentId id = WrittenExtent("layer2.param", Pattern(kExtentBytes, 4));
  const AlignedBuffer old_raw = RawCopy(id);
  ASSERT_TRUE(store_->Write(id, Pattern(kExtentBytes, 5).data()).ok());
  // The disk "forgets" the second write: old data with its old, valid trailer.
  RawRestore(id, old_raw);
  AlignedBuffer back(store_->info(id).buffer_bytes);
  const absl::Status status = store_->Read(id, back.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("a write was lost"));
}

TEST_P(ExtentStoreTest, MisdirectedWriteIsCaught) {
  const ExtentId a = WrittenExtent("a", Pattern(kExtentBytes, 6));
  const ExtentId b = WrittenExtent("b", Pattern(kExtentBytes, 7));
  RawRestore(b, RawCopy(a));  // a's write landed where b lives
  AlignedBuffer back(store_->info(b).buffer_bytes);
  const absl::Status status = store_->Read(b, back.data());
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(status.message()), HasSubstr("another extent"));
}

TEST_P(ExtentStoreTest, SilentlyTornWriteIsCaughtOnRead) {
  const ExtentId id = WrittenExtent("layer3.param", Pattern(kExtentBytes, 8));
  // The data request of the next write lands only half; the disk says OK.
  faulty_->TearNthWrite(1, FaultInjectingBlockDevice::Tear::kSilent);
  ASSERT_TRUE(store_->Write(id, Pattern(kExtentBytes, 9).data()).ok());
  AlignedBuffer back(store_->info(id).buffer_bytes);
  EXPECT_EQ(store_->Read(id, back.data()).code(), absl::StatusCode::kDataLoss);
}

TEST_P(ExtentStoreTest, DeviceErrorsPassThrough) {
  const ExtentId id = WrittenExtent("layer4.param", Pattern(kExtentBytes, 10));
  faulty_->FailNthRead(1);
  AlignedBuffer back(store_->info(id).buffer_bytes);
  EXPECT_THAT(std::string(store_->Read(id, back.data()).message()),
              HasSubstr("errno 5"));
  faulty_->FailNthWrite(1);
  const absl::Status failed = store_->Write(id, back.data());
  EXPECT_FALSE(failed.ok());
  // Sticky: the next write through the store fails the same way.
  EXPECT_EQ(store_->Write(id, back.data()), failed);
}

TEST_P(ExtentStoreTest, BatchesAndThreadsOfExtents) {
  constexpr int kExtents = 6;
  std::vector<ExtentId> ids;
  std::vector<AlignedBuffer> data;
  std::vector<ExtentIo> writes;
  for (int i = 0; i < kExtents; ++i) {
    auto id = store_->Allocate(kExtentBytes, absl::StrCat("e", i));
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
    data.push_back(Pattern(kExtentBytes, 20 + i));
    writes.push_back({IoOp::kWrite, *id, data.back().data()});
  }
  auto ticket = store_->Submit(writes);
  ASSERT_TRUE(ticket.ok());
  ASSERT_TRUE(store_->Wait(*ticket).ok());
  std::vector<std::thread> threads;
  std::vector<int> bad(kExtents, 0);
  for (int i = 0; i < kExtents; ++i) {
    threads.emplace_back([&, i] {
      AlignedBuffer back(store_->info(ids[i]).buffer_bytes);
      for (int round = 0; round < 5; ++round) {
        if (!store_->Read(ids[i], back.data()).ok() ||
            std::memcmp(back.data(), data[i].data(), kExtentBytes) != 0 ||
            !store_->Write(ids[i], data[i].data()).ok()) {
          ++bad[i];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kExtents; ++i) EXPECT_EQ(bad[i], 0) << "extent " << i;
}

INSTANTIATE_TEST_SUITE_P(AllBackends, ExtentStoreTest,
                         ::testing::ValuesIn(AllBlockDevices()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace stronghold::storage
