#include "client/checkpoint_writer.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/ascii.h"
#include "core/util/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool Exists(const std::string& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0;
}

// A directory that does not exist yet (Open must create it).
std::string FreshDir(const std::string& name) {
  const std::string root = testing::TempDir() + "/" + name;
  std::filesystem::remove_all(root);
  return root + "/nested";
}

TEST(CheckpointWriterTest, WritesVerifiesAndRenames) {
  const std::string dir = FreshDir("full");
  const std::string data = "hello checkpoint bytes";
  absl::StatusOr<std::unique_ptr<CheckpointWriter>> writer =
      CheckpointWriter::Open(dir, "model.safetensors");
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_FALSE((*writer)->resumed());
  ASSERT_TRUE((*writer)->Append(0, data.substr(0, 5)).ok());
  ASSERT_TRUE((*writer)->Append(5, data.substr(5)).ok());
  EXPECT_TRUE(Exists(dir + "/model.safetensors.part"));

  absl::StatusOr<std::string> digest =
      (*writer)->Commit(absl::AsciiStrToUpper(core::Sha256Hex(data)));
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(*digest, core::Sha256Hex(data));
  EXPECT_EQ(ReadAll(dir + "/model.safetensors"), data);
  EXPECT_FALSE(Exists(dir + "/model.safetensors.part"));
}

TEST(CheckpointWriterTest, ResumesFromPartFile) {
  const std::string dir = FreshDir("resume");
  const std::string data = "0123456789abcdef";
  {
    auto writer = CheckpointWriter::Open(dir, "opt.bin");
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(0, data.substr(0, 10)).ok());
  }  // interrupted: no Commit
  auto writer = CheckpointWriter::Open(dir, "opt.bin");
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_TRUE((*writer)->resumed());
  EXPECT_EQ((*writer)->size(), 10);
  ASSERT_TRUE((*writer)->Append(10, data.substr(10)).ok());
  absl::StatusOr<std::string> digest = (*writer)->Commit(core::Sha256Hex(data));
  ASSERT_TRUE(digest.ok()) << digest.status();
  EXPECT_EQ(ReadAll(dir + "/opt.bin"), data);
}

TEST(CheckpointWriterTest, MismatchRemovesPartFile) {
  const std::string dir = FreshDir("mismatch");
  auto writer = CheckpointWriter::Open(dir, "model.safetensors");
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(0, "corrupted").ok());
  absl::StatusOr<std::string> digest =
      (*writer)->Commit(core::Sha256Hex("good"));
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(digest.status().message(), HasSubstr("SHA-256 mismatch"));
  EXPECT_FALSE(Exists(dir + "/model.safetensors"));
  EXPECT_FALSE(Exists(dir + "/model.safetensors.part"));
}

TEST(CheckpointWriterTest, GapIsDataLoss) {
  auto writer = CheckpointWriter::Open(FreshDir("gap"), "f");
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(0, "abc").ok());
  absl::Status status = (*writer)->Append(5, "def");
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
}

TEST(CheckpointWriterTest, RejectsEscapingNames) {
  for (const std::string name : {"../evil", "/etc/passwd", "a/../../b", ""}) {
    auto writer = CheckpointWriter::Open(FreshDir("names"), name);
    EXPECT_FALSE(writer.ok()) << name;
  }
}

}  // namespace
}  // namespace stronghold::client
