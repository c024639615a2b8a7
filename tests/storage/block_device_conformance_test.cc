// The BlockDevice contract (storage/block_device.h), checked against every
// implementation in test_devices.h: round trips across blocks and striped
// files, batches deeper than the queue, validation (alignment, range),
// concurrent submitters, and faults injected through the wrapper around
// each backend (EIO, torn writes, ENOSPC, stickiness).
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/aligned_buffer.h"
#include "storage/block_device.h"
#include "storage/fault_injecting_block_device.h"
#include "tests/storage/test_devices.h"

namespace stronghold::storage {
namespace {

using testing::AllBlockDevices;
using testing::DeviceFactory;
using ::testing::HasSubstr;
using testing::kTestBlockBytes;

constexpr int64_t kCapacity = 4 << 20;
constexpr int64_t kAlign = 4096;

// Bytes that differ with position and `seed`, so misplaced data shows.
AlignedBuffer Pattern(int64_t bytes, uint32_t seed) {
  AlignedBuffer buffer(bytes);
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < bytes; ++i)
    buffer.data()[i] = static_cast<char>(rng());
  return buffer;
}

bool SameBytes(const AlignedBuffer& a, const AlignedBuffer& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

class BlockDeviceTest : public ::testing::TestWithParam<DeviceFactory> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir(GetParam().name);
    auto device = GetParam().open(dir_, kCapacity);
    ASSERT_TRUE(device.ok()) << device.status();
    device_ = *std::move(device);
  }

  // Wraps the device under test in a fault injector.
  FaultInjectingBlockDevice* Faulty() {
    if (faulty_ == nullptr) {
      faulty_ = std::make_unique<FaultInjectingBlockDevice>(std::move(device_));
    }
    return faulty_.get();
  }

  std::string dir_;
  std::unique_ptr<BlockDevice> device_;
  std::unique_ptr<FaultInjectingBlockDevice> faulty_;
};

TEST_P(BlockDeviceTest, ReportsItsGeometry) {
  EXPECT_GE(device_->alignment(), 512);
  EXPECT_EQ(device_->alignment() & (device_->alignment() - 1), 0);
  EXPECT_GE(device_->capacity(), kCapacity);
  EXPECT_EQ(device_->capacity() % device_->alignment(), 0);
  EXPECT_FALSE(device_->backend().empty());
  EXPECT_FALSE(device_->Describe().empty());
}

TEST_P(BlockDeviceTest, UnwrittenSpaceReadsAsZeros) {
  AlignedBuffer buffer(3 * kAlign);
  std::memset(buffer.data(), 0x5A, buffer.size());
  ASSERT_TRUE(
      device_->Read(kCapacity - buffer.size(), buffer.data(), buffer.size())
          .ok());
  EXPECT_TRUE(SameBytes(buffer, AlignedBuffer(3 * kAlign)));
}

TEST_P(BlockDeviceTest, RoundTripsAcrossBlocksAndStripes) {
  // Starts inside a block and spans several, so it is split into pieces on
  // different files of the striped backends.
  const int64_t offset = kAlign;
  const AlignedBuffer written = Pattern(5 * kTestBlockBytes + 2 * kAlign, 1);
  ASSERT_TRUE(device_->Write(offset, written.data(), written.size()).ok());
  AlignedBuffer read(written.size());
  ASSERT_TRUE(device_->Read(offset, read.data(), read.size()).ok());
  EXPECT_TRUE(SameBytes(read, written));
  // A read that starts in the middle sees the same bytes.
  AlignedBuffer middle(kTestBlockBytes);
  ASSERT_TRUE(device_
                  ->Read(offset + 2 * kAlign + kTestBlockBytes, middle.data(),
                         middle.size())
                  .ok());
  EXPECT_EQ(
      std::memcmp(middle.data(), written.data() + 2 * kAlign + kTestBlockBytes,
                  middle.size()),
      0);
  EXPECT_TRUE(device_->Sync().ok());
}

TEST_P(BlockDeviceTest, BatchesDeeperThanTheQueueComplete) {
  // 48 requests of assorted sizes at distinct places, in one batch each way.
  constexpr int kRequests = 48;
  std::vector<AlignedBuffer> written;
  std::vector<AlignedBuffer> read;
  std::vector<IoRequest> writes;
  std::vector<IoRequest> reads;
  int64_t offset = 0;
  for (int i = 0; i < kRequests; ++i) {
    const int64_t bytes = kAlign * (1 + i % 5);
    written.push_back(Pattern(bytes, 100 + i));
    read.emplace_back(bytes);
    writes.push_back({IoOp::kWrite, offset, bytes, written.back().data()});
    reads.push_back({IoOp::kRead, offset, bytes, read.back().data()});
    offset += bytes + kAlign;  // leave gaps
  }
  absl::StatusOr<IoTicket> ticket = device_->Submit(writes);
  ASSERT_TRUE(ticket.ok()) << ticket.status();
  ASSERT_TRUE(device_->Wait(*ticket).ok());
  ticket = device_->Submit(reads);
  ASSERT_TRUE(ticket.ok()) << ticket.status();
  ASSERT_TRUE(device_->Wait(*ticket).ok());
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_TRUE(SameBytes(read[i], written[i])) << "request " << i;
  }
}

TEST_P(BlockDeviceTest, TicketsMayBeWaitedForInAnyOrder) {
  constexpr int kBatches = 8;
  std::vector<AlignedBuffer> data;
  std::vector<IoTicket> tickets;
  for (int i = 0; i < kBatches; ++i) {
    data.push_back(Pattern(kTestBlockBytes, 200 + i));
    auto ticket = device_->Submit(
        {{IoOp::kWrite, i * kTestBlockBytes, kTestBlockBytes, data[i].data()}});
    ASSERT_TRUE(ticket.ok());
    tickets.push_back(*ticket);
  }
  for (int i = kBatches - 1; i >= 0; --i) {
    EXPECT_TRUE(device_->Wait(tickets[i]).ok());
  }
  AlignedBuffer read(kBatches * kTestBlockBytes);
  ASSERT_TRUE(device_->Read(0, read.data(), read.size()).ok());
  for (int i = 0; i < kBatches; ++i) {
    EXPECT_EQ(std::memcmp(read.data() + i * kTestBlockBytes, data[i].data(),
                          kTestBlockBytes),
              0);
  }
}

TEST_P(BlockDeviceTest, RejectsMisalignedAndEmptyRequests) {
  AlignedBuffer buffer(2 * kAlign);
  const IoRequest bad[] = {
      {IoOp::kWrite, 100, kAlign, buffer.data()},      // offset
      {IoOp::kWrite, 0, kAlign + 100, buffer.data()},  // length
      {IoOp::kWrite, 0, kAlign, buffer.data() + 1},    // buffer address
      {IoOp::kRead, 0, 0, buffer.data()},              // empty
      {IoOp::kRead, 0, kAlign, nullptr},               // no buffer
      {IoOp::kRead, -kAlign, kAlign, buffer.data()},   // negative
  };
  for (const IoRequest& r : bad) {
    absl::StatusOr<IoTicket> ticket = device_->Submit({&r, 1});
    EXPECT_EQ(ticket.status().code(), absl::StatusCode::kInvalidArgument)
        << "offset " << r.offset << " bytes " << r.bytes;
  }
  // Rejection is not an I/O error: the device goes on working.
  EXPECT_TRUE(device_->sticky_error().ok());
  const AlignedBuffer data = Pattern(kAlign, 3);
  EXPECT_TRUE(device_->Write(0, data.data(), kAlign).ok());
}

TEST_P(BlockDeviceTest, RejectsRequestsPastTheEnd) {
  AlignedBuffer buffer(2 * kAlign);
  const int64_t cap = device_->capacity();
  EXPECT_EQ(device_->Read(cap, buffer.data(), kAlign).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(device_->Read(cap - kAlign, buffer.data(), 2 * kAlign).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(device_->Write(cap - kAlign, buffer.data(), 2 * kAlign).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(device_->Read(cap - kAlign, buffer.data(), kAlign).ok());
  // One bad request rejects its whole batch before anything is written.
  const AlignedBuffer data = Pattern(kAlign, 4);
  const IoRequest batch[] = {{IoOp::kWrite, 0, kAlign, data.data()},
                             {IoOp::kWrite, cap, kAlign, data.data()}};
  EXPECT_EQ(device_->Submit(batch).status().code(),
            absl::StatusCode::kOutOfRange);
  ASSERT_TRUE(device_->Read(0, buffer.data(), kAlign).ok());
  EXPECT_EQ(std::memcmp(buffer.data(), AlignedBuffer(kAlign).data(), kAlign),
            0);
}

TEST_P(BlockDeviceTest, ConcurrentSubmittersSeeTheirOwnData) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 20;
  const int64_t region = device_->capacity() / kThreads;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        const int64_t bytes = kAlign * (1 + (t + round) % 24);
        const int64_t offset = t * region + (round % 4) * 32 * kAlign;
        const AlignedBuffer data = Pattern(bytes, 1000 * t + round);
        AlignedBuffer back(bytes);
        if (!device_->Write(offset, data.data(), bytes).ok() ||
            !device_->Read(offset, back.data(), bytes).ok() ||
            !SameBytes(data, back)) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(failures[t], 0) << "thread " << t;
}

TEST_P(BlockDeviceTest, RegisteredAndUnregisteredBuffersBothWork) {
  AlignedBuffer arena(8 * kAlign);
  // Registration may fail (RLIMIT_MEMLOCK); I/O must work either way.
  device_->RegisterBuffers({{arena.data(), arena.size()}}).IgnoreError();
  const AlignedBuffer data = Pattern(4 * kAlign, 5);
  std::memcpy(arena.data() + 2 * kAlign, data.data(), data.size());
  ASSERT_TRUE(
      device_->Write(kAlign, arena.data() + 2 * kAlign, data.size()).ok());
  AlignedBuffer outside(data.size());
  ASSERT_TRUE(device_->Read(kAlign, outside.data(), outside.size()).ok());
  EXPECT_TRUE(SameBytes(outside, data));
  std::memset(arena.data(), 0, arena.size());
  ASSERT_TRUE(device_->Read(kAlign, arena.data(), data.size()).ok());
  EXPECT_EQ(std::memcmp(arena.data(), data.data(), data.size()), 0);
  EXPECT_TRUE(device_->RegisterBuffers({}).ok());
}

// --- Faults injected by the wrapper around this backend. ---

TEST_P(BlockDeviceTest, FailedWriteIsStickyAndNamesOffsetAndErrno) {
  FaultInjectingBlockDevice* device = Faulty();
  const AlignedBuffer first = Pattern(kAlign, 6);
  const AlignedBuffer second = Pattern(kAlign, 7);
  device->FailNthWrite(2);
  ASSERT_TRUE(device->Write(0, first.data(), kAlign).ok());
  const absl::Status failed = device->Write(8 * kAlign, second.data(), kAlign);
  EXPECT_EQ(failed.code(), absl::StatusCode::kDataLoss);
  // Named like the backend's own errors: the stripe's file and the offset
  // in it.
  const IoLocation where = device->Locate(8 * kAlign);
  EXPECT_THAT(std::string(failed.message()),
              HasSubstr(absl::StrCat("at offset ", where.offset, " of ",
                                     where.file, " (injected fault)")));
  EXPECT_THAT(std::string(failed.message()), HasSubstr("errno 5"));
  // The device's state is unknown now: later writes and syncs fail too,
  // with the original error, although no fault is armed any more.
  EXPECT_EQ(device->Write(16 * kAlign, second.data(), kAlign), failed);
  EXPECT_EQ(device->Sync(), failed);
  EXPECT_EQ(device->sticky_error(), failed);
  // Reads still run.
  AlignedBuffer back(kAlign);
  ASSERT_TRUE(device->Read(0, back.data(), kAlign).ok());
  EXPECT_TRUE(SameBytes(back, first));
}

TEST_P(BlockDeviceTest, FailedWriteInABatchStillCompletesTheOthers) {
  FaultInjectingBlockDevice* device = Faulty();
  std::vector<AlignedBuffer> data;
  std::vector<IoRequest> batch;
  for (int i = 0; i < 3; ++i) {
    data.push_back(Pattern(kTestBlockBytes, 20 + i));
    batch.push_back(
        {IoOp::kWrite, i * kTestBlockBytes, kTestBlockBytes, data[i].data()});
  }
  device->FailNthWrite(2);
  auto ticket = device->Submit(batch);
  ASSERT_TRUE(ticket.ok());
  EXPECT_EQ(device->Wait(*ticket).code(), absl::StatusCode::kDataLoss);
  AlignedBuffer back(kTestBlockBytes);
  ASSERT_TRUE(device->Read(2 * kTestBlockBytes, back.data(), back.size()).ok());
  EXPECT_TRUE(SameBytes(back, data[2]));
}

TEST_P(BlockDeviceTest, ShortTornWriteIsAStickyError) {
  FaultInjectingBlockDevice* device = Faulty();
  const AlignedBuffer data = Pattern(kTestBlockBytes, 8);
  device->TearNthWrite(1, FaultInjectingBlockDevice::Tear::kShortTransfer);
  const absl::Status torn = device->Write(0, data.data(), data.size());
  EXPECT_EQ(torn.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(torn.message()), HasSubstr("short write"));
  EXPECT_THAT(std::string(torn.message()),
              HasSubstr(absl::StrCat("only ", kTestBlockBytes / 2, " bytes")));
  EXPECT_EQ(device->Write(0, data.data(), data.size()), torn);
}

TEST_P(BlockDeviceTest, SilentTornWriteLandsOnlyHalfTheData) {
  FaultInjectingBlockDevice* device = Faulty();
  const AlignedBuffer old_data = Pattern(kTestBlockBytes, 9);
  const AlignedBuffer new_data = Pattern(kTestBlockBytes, 10);
  ASSERT_TRUE(device->Write(0, old_data.data(), old_data.size()).ok());
  device->TearNthWrite(1, FaultInjectingBlockDevice::Tear::kSilent);
  // A lying disk: reported as success (only checksums can catch it).
  ASSERT_TRUE(device->Write(0, new_data.data(), new_data.size()).ok());
  AlignedBuffer back(kTestBlockBytes);
  ASSERT_TRUE(device->Read(0, back.data(), back.size()).ok());
  const int64_t half = kTestBlockBytes / 2;
  EXPECT_EQ(std::memcmp(back.data(), new_data.data(), half), 0);
  EXPECT_EQ(std::memcmp(back.data() + half, old_data.data() + half, half), 0);
}

TEST_P(BlockDeviceTest, ReadErrorFailsThatReadOnly) {
  FaultInjectingBlockDevice* device = Faulty();
  const AlignedBuffer data = Pattern(kAlign, 11);
  ASSERT_TRUE(device->Write(0, data.data(), kAlign).ok());
  device->FailNthRead(1);
  AlignedBuffer back(kAlign);
  const absl::Status failed = device->Read(0, back.data(), kAlign);
  EXPECT_EQ(failed.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(failed.message()),
              HasSubstr("read of 4096 bytes at offset 0"));
  EXPECT_THAT(std::string(failed.message()),
              HasSubstr("Input/output error (errno 5)"));
  // A read changes nothing on the device: not sticky.
  EXPECT_TRUE(device->sticky_error().ok());
  ASSERT_TRUE(device->Read(0, back.data(), kAlign).ok());
  EXPECT_TRUE(SameBytes(back, data));
  EXPECT_TRUE(device->Write(kAlign, data.data(), kAlign).ok());
  device->FailAllReads();
  EXPECT_FALSE(device->Read(0, back.data(), kAlign).ok());
  EXPECT_FALSE(device->Read(kAlign, back.data(), kAlign).ok());
  device->ClearFaults();
  EXPECT_TRUE(device->Read(0, back.data(), kAlign).ok());
}

TEST_P(BlockDeviceTest, FullDiskIsResourceExhaustedWithTheSpaceNeeded) {
  FaultInjectingBlockDevice* device = Faulty();
  const AlignedBuffer data = Pattern(kTestBlockBytes, 12);
  device->SetSpaceLimit(2 * kTestBlockBytes);
  ASSERT_TRUE(device->Write(0, data.data(), data.size()).ok());
  const absl::Status full =
      device->Write(2 * kTestBlockBytes, data.data(), data.size());
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()),
              HasSubstr("No space left on device"));
  // Like the file backends' own ENOSPC: the file and the bytes it needs.
  const IoLocation where = device->Locate(2 * kTestBlockBytes);
  EXPECT_THAT(std::string(full.message()),
              HasSubstr(absl::StrCat("at offset ", where.offset, " of ",
                                     where.file, " (injected fault)")));
  EXPECT_THAT(std::string(full.message()),
              HasSubstr(absl::StrCat("needs ", where.file_bytes, " bytes")));
  EXPECT_EQ(device->Write(0, data.data(), data.size()), full);
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BlockDeviceTest,
                         ::testing::ValuesIn(AllBlockDevices()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace stronghold::storage
