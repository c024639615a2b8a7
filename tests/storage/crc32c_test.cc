#include "storage/crc32c.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace stronghold::storage::crc32c {
namespace {

using Fn = uint32_t (*)(uint32_t, const void*, size_t);

std::vector<std::pair<std::string, Fn>> Implementations() {
  std::vector<std::pair<std::string, Fn>> fns = {
      {"portable", &internal::ExtendPortable}, {"dispatch", &Extend}};
  if (IsHardwareAccelerated()) fns.push_back({"sse42", &internal::ExtendSse42});
  return fns;
}

// RFC 3720 (iSCSI) B.4 and the check value of the CRC catalogue.
TEST(Crc32cTest, KnownVectors) {
  for (const auto& [name, fn] : Implementations()) {
    SCOPED_TRACE(name);
    EXPECT_EQ(fn(0, "123456789", 9), 0xE3069283u);
    EXPECT_EQ(fn(0, "", 0), 0u);
    unsigned char buf[32];
    std::memset(buf, 0, sizeof(buf));
    EXPECT_EQ(fn(0, buf, sizeof(buf)), 0x8A9136AAu);
    std::memset(buf, 0xFF, sizeof(buf));
    EXPECT_EQ(fn(0, buf, sizeof(buf)), 0x62A8AB43u);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(i);
    EXPECT_EQ(fn(0, buf, sizeof(buf)), 0x46DD794Eu);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<unsigned char>(31 - i);
    EXPECT_EQ(fn(0, buf, sizeof(buf)), 0x113FDB5Cu);
    // An iSCSI SCSI Read (10) command PDU.
    const unsigned char pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    EXPECT_EQ(fn(0, pdu, sizeof(pdu)), 0xD9963A56u);
  }
}

TEST(Crc32cTest, ExtendEqualsValueOfTheConcatenation) {
  const std::string a = "hello ", b = "world";
  EXPECT_EQ(Extend(Value(a.data(), a.size()), b.data(), b.size()),
            Value("hello world", 11));
}

TEST(Crc32cTest, ImplementationsAgreeOnEveryLengthAndAlignment) {
  std::mt19937 rng(42);
  std::vector<unsigned char> data(4096 + 16);
  for (auto& c : data) c = static_cast<unsigned char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n = 0; n < 300; ++n) {
      const uint32_t expected = internal::ExtendPortable(7, &data[start], n);
      for (const auto& [name, fn] : Implementations()) {
        ASSERT_EQ(fn(7, &data[start], n), expected)
            << name << " start " << start << " length " << n;
      }
    }
  }
  for (const auto& [name, fn] : Implementations()) {
    EXPECT_EQ(fn(0, data.data(), 4096),
              internal::ExtendPortable(0, data.data(), 4096))
        << name;
  }
}

// Lengths around the hardware path's three-stream blocks (3 x 8 KiB).
TEST(Crc32cTest, ImplementationsAgreeAcrossTheThreeStreamBlocks) {
  std::mt19937 rng(7);
  std::vector<unsigned char> data(5 * 24576 + 64);
  for (auto& c : data) c = static_cast<unsigned char>(rng());
  for (size_t start : {0, 3}) {
    for (size_t n : {24575, 24576, 24577, 24576 + 8, 2 * 24576 - 1, 2 * 24576,
                     5 * 24576 + 13}) {
      const uint32_t expected =
          internal::ExtendPortable(0x1234, &data[start], n);
      for (const auto& [name, fn] : Implementations()) {
        ASSERT_EQ(fn(0x1234, &data[start], n), expected)
            << name << " start " << start << " length " << n;
      }
    }
  }
}

TEST(Crc32cTest, AnySingleFlippedBitChangesTheValue) {
  std::vector<unsigned char> data(1024);
  std::mt19937 rng(7);
  for (auto& c : data) c = static_cast<unsigned char>(rng());
  const uint32_t good = Value(data.data(), data.size());
  for (size_t byte = 0; byte < data.size(); byte += 37) {
    for (int bit = 0; bit < 8; ++bit) {
      data[byte] ^= 1 << bit;
      EXPECT_NE(Value(data.data(), data.size()), good);
      data[byte] ^= 1 << bit;
    }
  }
}

}  // namespace
}  // namespace stronghold::storage::crc32c
