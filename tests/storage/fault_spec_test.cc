// The --ssd_fault_injection spec: what parses, what is refused and why, and
// that arming fires each fault at its request and only once.
#include "storage/fault_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "storage/aligned_buffer.h"
#include "storage/memory_block_device.h"

namespace stronghold::storage {
namespace {

using ::testing::HasSubstr;

TEST(FaultSpecTest, ParsesEveryKind) {
  auto spec = ParseFaultSpec("eio_read@3,torn_write@5");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->faults.size(), 2);
  EXPECT_EQ(spec->faults[0].kind, FaultKind::kEioRead);
  EXPECT_EQ(spec->faults[0].n, 3);
  EXPECT_EQ(spec->faults[1].kind, FaultKind::kTornWrite);
  EXPECT_EQ(spec->faults[1].n, 5);
  EXPECT_EQ(spec->text, "eio_read@3,torn_write@5");
  EXPECT_EQ(ParseFaultSpec("eio_write@1")->faults[0].kind,
            FaultKind::kEioWrite);
  EXPECT_EQ(ParseFaultSpec("enospc_write@7")->faults[0].kind,
            FaultKind::kEnospcWrite);
  EXPECT_TRUE(ParseFaultSpec("")->faults.empty());
}

TEST(FaultSpecTest, RefusesMalformedSpecsNamingTheEntry) {
  for (const char* text :
       {"eio_read", "eio_read@", "eio_read@0", "eio_read@-2", "eio_read@x",
        "eio@3", "eio_read@3,", "eio_read@3@4", "torn_write@1,eio_write@2",
        "eio_read@1,eio_read@2", " eio_read@1"}) {
    const absl::Status s = ParseFaultSpec(text).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(s.message()), HasSubstr("eio_read@N")) << text;
  }
  EXPECT_THAT(
      std::string(ParseFaultSpec("eio_read@1,bogus@2").status().message()),
      HasSubstr("\"bogus@2\": unknown fault \"bogus\""));
}

TEST(FaultSpecTest, ArmedFaultsFireAtTheirRequestOnce) {
  FaultInjectingBlockDevice device(
      NewMemoryBlockDevice(MemoryBlockDeviceOptions(1 << 20)));
  ArmFaults(*ParseFaultSpec("eio_read@2,enospc_write@3"), &device);
  AlignedBuffer buffer(4096);
  ASSERT_TRUE(device.Write(0, buffer.data(), 4096).ok());
  ASSERT_TRUE(device.Write(4096, buffer.data(), 4096).ok());
  ASSERT_TRUE(device.Read(0, buffer.data(), 4096).ok());
  const absl::Status read = device.Read(0, buffer.data(), 4096);
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(read.message()), HasSubstr("errno 5"));
  EXPECT_TRUE(device.Read(0, buffer.data(), 4096).ok());  // once
  const absl::Status write = device.Write(8192, buffer.data(), 4096);
  EXPECT_EQ(write.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(write.message()), HasSubstr("errno 28"));
}

TEST(FaultSpecTest, TornWriteIsSilent) {
  FaultInjectingBlockDevice device(
      NewMemoryBlockDevice(MemoryBlockDeviceOptions(1 << 20)));
  ArmFaults(*ParseFaultSpec("torn_write@1"), &device);
  AlignedBuffer data(8192);
  std::memset(data.data(), 0x5A, data.size());
  EXPECT_TRUE(device.Write(0, data.data(), 8192).ok());  // reported as done
  AlignedBuffer back(8192);
  ASSERT_TRUE(device.Read(0, back.data(), 8192).ok());
  EXPECT_EQ(back.data()[4095], 0x5A);
  EXPECT_EQ(back.data()[4096], 0);  // the second half never landed
}

}  // namespace
}  // namespace stronghold::storage
