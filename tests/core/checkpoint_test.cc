// Checkpoint files on their own (no training): the layout and manifest, the
// round trip into host buffers, atomicity leftovers, and refusal of every
// kind of damage with the damaged file named.
#include "core/checkpoint/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/checkpoint/checkpoint_reader.h"
#include "core/checkpoint/safetensors.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const fs::path p =
      fs::path(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR")
                                          : "/tmp") /
      name;
  fs::remove_all(p);
  return p.string();
}

const ModelConfig kModel{
    .layers = 2, .hidden = 8, .heads = 2, .seq_len = 4, .vocab = 16};

// Host state of kModel (or another model) with recognizable values.
class State {
 public:
  explicit State(const ModelConfig& model = kModel, float base = 0.0f)
      : layouts_(ModelLayout(model)) {
    for (size_t b = 0; b < layouts_.size(); ++b) {
      for (auto* v : {&param_, &m_, &v_})
        v->emplace_back(layouts_[b].count, 0.0f);
      for (int64_t i = 0; i < layouts_[b].count; ++i) {
        param_[b][i] = base + static_cast<float>(b * 1000 + i);
        m_[b][i] = -param_[b][i];
        v_[b][i] = 0.5f * param_[b][i];
      }
    }
  }
  std::vector<CheckpointBuffer> Buffers() {
    std::vector<CheckpointBuffer> out;
    for (size_t b = 0; b < layouts_.size(); ++b) {
      out.push_back(
          {layouts_[b], param_[b].data(), m_[b].data(), v_[b].data()});
    }
    return out;
  }
  // The same state with the moments of buffers 1 .. count-2 (the blocks)
  // held "elsewhere" (this object's vectors, standing in for the NVMe tier)
  // and streamed through one shared buffer, as the trainer does for spilled
  // layers. `log` records the hooks' calls in order.
  std::vector<CheckpointBuffer> StreamedBuffers(std::vector<float>* staging,
                                                std::vector<std::string>* log,
                                                int fail_load_of = -1) {
    int64_t largest = 0;
    for (const BufferLayout& l : layouts_) largest = std::max(largest, l.count);
    staging->assign(2 * largest, std::nanf(""));
    float* m = staging->data();
    float* v = staging->data() + largest;
    std::vector<CheckpointBuffer> out = Buffers();
    for (size_t b = 1; b + 1 < layouts_.size(); ++b) {
      const int64_t n = layouts_[b].count;
      out[b].exp_avg = m;
      out[b].exp_avg_sq = v;
      out[b].load_moments = [this, b, n, m, v, log,
                             fail_load_of]() -> absl::Status {
        log->push_back(absl::StrCat("load ", b));
        if (static_cast<int>(b) == fail_load_of) {
          return absl::DataLossError("read of the tier failed");
        }
        std::copy(m_[b].begin(), m_[b].end(), m);
        std::copy(v_[b].begin(), v_[b].end(), v);
        return absl::OkStatus();
      };
      out[b].store_moments = [this, b, n, m, v, log] {
        log->push_back(absl::StrCat("store ", b));
        std::copy(m, m + n, m_[b].begin());
        std::copy(v, v + n, v_[b].begin());
        return absl::OkStatus();
      };
    }
    return out;
  }
  bool operator==(const State& o) const {
    return param_ == o.param_ && m_ == o.m_ && v_ == o.v_;
  }

 private:
  std::vector<BufferLayout> layouts_;
  std::vector<std::vector<float>> param_, m_, v_;
};

TrainingPosition Position(int64_t step) {
  return {.step = step,
          .optimizer_step = step,
          .seed = 77,
          .batch = 8,
          .next_sample = step * 8,
          .lr = 1e-3 / 3,
          .next_lr = 2e-3 / 7};
}

void FlipByte(const std::string& path, int64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(offset);
  char c = 0;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x01));
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ManifestTest, RoundTripsExactly) {
  CheckpointManifest m;
  m.position = Position(12);
  m.position.seed = std::numeric_limits<uint64_t>::max();
  m.model = ManifestModelOf(kModel);
  m.files.push_back({"model.safetensors", 123, std::string(64, 'a')});
  const std::string text = ManifestToJson(m);
  auto back = ParseManifest(text, "x/manifest.json");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->position.seed, m.position.seed);
  EXPECT_EQ(back->position.lr, m.position.lr);  // bit for bit
  EXPECT_EQ(back->position.next_lr, m.position.next_lr);
  EXPECT_EQ(back->model.vocab, 16);
  ASSERT_EQ(back->files.size(), 1u);
  EXPECT_EQ(back->files[0].bytes, 123);
  // Written before mixed precision, or in fp32/bf16: no loss scale.
  EXPECT_EQ(text.find("loss_scale"), std::string::npos);
  EXPECT_EQ(back->position.loss_scale, 0);

  // fp16's loss-scale state round-trips too.
  CheckpointManifest fp16 = m;
  fp16.position.optimizer_step = 9;  // 3 steps skipped
  fp16.position.loss_scale = 8192;
  fp16.position.loss_scale_good_steps = 1999;
  auto fp16_back = ParseManifest(ManifestToJson(fp16), "x/manifest.json");
  ASSERT_TRUE(fp16_back.ok()) << fp16_back.status();
  EXPECT_EQ(fp16_back->position.optimizer_step, 9);
  EXPECT_EQ(fp16_back->position.loss_scale, 8192);
  EXPECT_EQ(fp16_back->position.loss_scale_good_steps, 1999);

  // Every single flipped byte is caught by the self-digest (or the parser).
  for (size_t i = 0; i < text.size(); ++i) {
    std::string damaged = text;
    damaged[i] ^= 0x01;
    auto r = ParseManifest(damaged, "x/manifest.json");
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("x/manifest.json"),
              absl::string_view::npos);
  }
}

TEST(CheckpointTest, WritesEveryFileWithManifestAndPrunes) {
  State state;
  const std::string dir = FreshDir("ckpt");
  for (int step : {10, 20, 30}) {
    auto name = WriteCheckpoint(dir, kModel, Position(step), state.Buffers(),
                                "{\"name\": \"x\"}\n");
    ASSERT_TRUE(name.ok()) << name.status();
    EXPECT_EQ(*name, CheckpointName(step));
  }
  EXPECT_EQ(
      ListCheckpoints(dir),
      (std::vector<std::string>{"step-000010", "step-000020", "step-000030"}));
  ASSERT_TRUE(PruneCheckpoints(dir, 2).ok());
  EXPECT_EQ(ListCheckpoints(dir),
            (std::vector<std::string>{"step-000020", "step-000030"}));
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_NE(e.path().filename().string()[0], '.')
        << "hidden leftover " << e.path();
  }

  const std::string ckpt = dir + "/step-000030";
  auto manifest = VerifyCheckpoint(ckpt);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_EQ(manifest->position.step, 30);
  EXPECT_EQ(manifest->position.next_sample, 240);
  ASSERT_EQ(manifest->files.size(), 3u);
  for (const ManifestFile& f : manifest->files) {
    EXPECT_EQ(*Sha256File(ckpt + "/" + f.name), f.sha256) << f.name;
    EXPECT_EQ(static_cast<int64_t>(fs::file_size(ckpt + "/" + f.name)), f.bytes)
        << f.name;
  }

  const std::string model = ckpt + "/model.safetensors";
  auto header = ReadSafetensorsHeader(model);
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(header->metadata.at("step"), "30");
  EXPECT_EQ(header->tensors.size(), 2u + 2u * 12u + 2u);
  const std::vector<BufferLayout> layouts = ModelLayout(kModel);
  auto fc2 = ReadSafetensorsTensor(model, *header, "layers.1.mlp.fc2.bias");
  ASSERT_TRUE(fc2.ok());
  EXPECT_EQ((*fc2)[0], static_cast<float>(
                           2000 + layouts[2].tensor("mlp.fc2.bias").offset));
  auto opt = ReadSafetensorsHeader(ckpt + "/optimizer.safetensors");
  ASSERT_TRUE(opt.ok()) << opt.status();
  EXPECT_EQ(opt->tensors.size(), 2 * header->tensors.size());
  auto m = ReadSafetensorsTensor(ckpt + "/optimizer.safetensors", *opt,
                                 "wpe.weight.exp_avg");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[1],
            -static_cast<float>(layouts[0].tensor("wpe.weight").offset + 1));
}

TEST(CheckpointTest, LoadRestoresEveryBufferExactly) {
  State saved(kModel, 0.25f), loaded(kModel, -9.0f);
  const std::string dir = FreshDir("roundtrip");
  ASSERT_TRUE(
      WriteCheckpoint(dir, kModel, Position(5), saved.Buffers(), "").ok());
  EXPECT_FALSE(saved == loaded);
  auto m = LoadCheckpoint(dir + "/step-000005", kModel, loaded.Buffers());
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->position.step, 5);
  EXPECT_TRUE(saved == loaded);
}

TEST(CheckpointTest, StreamedMomentsGoThroughOneBufferAndMatchInMemoryOnes) {
  State saved(kModel, 0.25f);
  const std::string plain = FreshDir("plain");
  const std::string streamed = FreshDir("streamed");
  ASSERT_TRUE(
      WriteCheckpoint(plain, kModel, Position(5), saved.Buffers(), "").ok());
  std::vector<float> staging;
  std::vector<std::string> log;
  ASSERT_TRUE(WriteCheckpoint(streamed, kModel, Position(5),
                              saved.StreamedBuffers(&staging, &log), "")
                  .ok());
  // Each block's moments were brought in once, in file order, through the
  // one buffer; the files are byte-identical to the in-memory checkpoint's.
  EXPECT_EQ(log, (std::vector<std::string>{"load 1", "load 2"}));
  for (const char* file : {kModelFile, kOptimizerFile}) {
    EXPECT_EQ(*Sha256File(plain + "/step-000005/" + file),
              *Sha256File(streamed + "/step-000005/" + file))
        << file;
  }

  State loaded(kModel, -9.0f);
  log.clear();
  auto m = LoadCheckpoint(streamed + "/step-000005", kModel,
                          loaded.StreamedBuffers(&staging, &log));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(log, (std::vector<std::string>{"store 1", "store 2"}));
  EXPECT_TRUE(saved == loaded);
}

TEST(CheckpointTest, AFailedStreamLeavesNoCheckpointBehind) {
  State saved(kModel, 0.25f);
  const std::string dir = FreshDir("failed_stream");
  ASSERT_TRUE(
      WriteCheckpoint(dir, kModel, Position(4), saved.Buffers(), "").ok());
  std::vector<float> staging;
  std::vector<std::string> log;
  auto written = WriteCheckpoint(
      dir, kModel, Position(5),
      saved.StreamedBuffers(&staging, &log, /*fail_load_of=*/2), "");
  EXPECT_EQ(written.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(written.status().message(), "read of the tier failed");
  EXPECT_EQ(ListCheckpoints(dir), std::vector<std::string>{"step-000004"});
  int entries = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename(), "step-000004");
    ++entries;
  }
  EXPECT_EQ(entries, 1);  // no hidden .tmp- leftover either
}

TEST(CheckpointTest, CheckpointNamesSortByStep) {
  EXPECT_EQ(CheckpointStep("step-000030"), 30);
  EXPECT_EQ(CheckpointStep("step-1234567"), 1234567);
  EXPECT_EQ(CheckpointStep(".tmp-step-000030"), std::nullopt);
  EXPECT_EQ(CheckpointStep("step-30"), std::nullopt);
  State state;
  const std::string dir = FreshDir("order");
  for (int step : {1000000, 999999}) {
    ASSERT_TRUE(
        WriteCheckpoint(dir, kModel, Position(step), state.Buffers(), "").ok());
  }
  EXPECT_EQ(ListCheckpoints(dir),
            (std::vector<std::string>{"step-999999", "step-1000000"}));
}

TEST(CheckpointTest, LeftoversOfACrashAreInvisibleAndRemoved) {
  State state;
  const std::string dir = FreshDir("leftovers");
  ASSERT_TRUE(
      WriteCheckpoint(dir, kModel, Position(2), state.Buffers(), "").ok());
  // What kill -9 leaves mid-write (no manifest yet) and mid-prune.
  fs::create_directories(dir + "/.tmp-step-000004");
  std::ofstream(dir + "/.tmp-step-000004/model.safetensors") << "partial";
  fs::copy(dir + "/step-000002", dir + "/.del-step-000001");
  EXPECT_EQ(ListCheckpoints(dir), std::vector<std::string>{"step-000002"});
  auto removed = RemoveIncompleteCheckpoints(dir);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_FALSE(fs::exists(dir + "/.tmp-step-000004"));
  EXPECT_EQ(ListCheckpoints(dir), std::vector<std::string>{"step-000002"});
  // Writing the same step again replaces it.
  ASSERT_TRUE(
      WriteCheckpoint(dir, kModel, Position(2), state.Buffers(), "").ok());
  EXPECT_TRUE(VerifyCheckpoint(dir + "/step-000002").ok());
}

class DamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir("damage");
    ASSERT_TRUE(WriteCheckpoint(dir_, kModel, Position(3), saved_.Buffers(),
                                "{\"name\": \"x\"}\n")
                    .ok());
    ckpt_ = dir_ + "/step-000003";
  }
  // Loads and expects failure naming `file`, with one of the two codes.
  void ExpectRefused(const std::string& file, const std::string& what) {
    State target(kModel, 5.0f);
    auto m = LoadCheckpoint(ckpt_, kModel, target.Buffers());
    ASSERT_FALSE(m.ok()) << what;
    EXPECT_TRUE(m.status().code() == absl::StatusCode::kDataLoss ||
                m.status().code() == absl::StatusCode::kInvalidArgument)
        << what << ": " << m.status();
    EXPECT_NE(m.status().message().find(file), absl::string_view::npos)
        << what << ": " << m.status();
  }
  State saved_;
  std::string dir_, ckpt_;
};

TEST_F(DamageTest, OneFlippedByteInAnyFileIsFoundAndNamed) {
  for (const char* file : {"model.safetensors", "optimizer.safetensors",
                           "job.json", "manifest.json"}) {
    const std::string path = ckpt_ + "/" + file;
    const int64_t size = static_cast<int64_t>(fs::file_size(path));
    // The size prefix, the JSON header, the first and the last data bytes.
    for (int64_t offset :
         {int64_t{0}, int64_t{3}, int64_t{20}, size / 2, size - 1}) {
      if (offset >= size) continue;
      FlipByte(path, offset);
      ExpectRefused(file, absl::StrCat(file, " byte ", offset));
      FlipByte(path, offset);  // repair
      State target;
      ASSERT_TRUE(LoadCheckpoint(ckpt_, kModel, target.Buffers()).ok());
    }
  }
}

TEST_F(DamageTest, TruncatedOrMissingFilesAreDataLoss) {
  for (const char* file : {"model.safetensors", "optimizer.safetensors",
                           "job.json", "manifest.json"}) {
    SetUp();
    const std::string path = ckpt_ + "/" + file;
    fs::resize_file(path, fs::file_size(path) - 4);
    ExpectRefused(file, absl::StrCat(file, " truncated"));
    SetUp();
    fs::remove(path);
    ExpectRefused(file, absl::StrCat(file, " missing"));
  }
}

TEST_F(DamageTest, AnotherModelShapeIsInvalidArgument) {
  ModelConfig other = kModel;
  other.layers = 3;
  State target(other);
  auto m = LoadCheckpoint(ckpt_, other, target.Buffers());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument)
      << m.status();
  EXPECT_NE(m.status().message().find("manifest.json"), absl::string_view::npos)
      << m.status();
  EXPECT_NE(m.status().message().find("layers 2"), absl::string_view::npos)
      << m.status();

  // A manifest that claims the job's shape over tensors of another: the
  // tensor file is named.
  ModelConfig wide = kModel;
  wide.hidden = 16;
  State wide_state(wide);
  const std::string dir = FreshDir("wide");
  ASSERT_TRUE(
      WriteCheckpoint(dir, wide, Position(3), wide_state.Buffers(), "").ok());
  auto manifest = ReadCheckpointManifest(dir + "/step-000003");
  ASSERT_TRUE(manifest.ok());
  manifest->model = ManifestModelOf(kModel);
  ASSERT_TRUE(WriteFileAtomically(dir + "/step-000003/manifest.json",
                                  ManifestToJson(*manifest))
                  .ok());
  State small;
  m = LoadCheckpoint(dir + "/step-000003", kModel, small.Buffers());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument)
      << m.status();
  EXPECT_NE(m.status().message().find(
                "model.safetensors: tensor wte.weight is F32 [128, 16], the "
                "job's model needs F32 [128, 8]"),
            absl::string_view::npos)
      << m.status();
}

TEST_F(DamageTest, WeightsOnlyV1CheckpointsAreNotResumed) {
  const std::string v1 = absl::StrCat(
      "{\n  \"format\": \"stronghold-checkpoint-v1\",\n  \"step\": 3,\n  "
      "\"files\": [\n    {\"name\": \"model.safetensors\", \"bytes\": ",
      fs::file_size(ckpt_ + "/model.safetensors"), ", \"sha256\": \"",
      *Sha256File(ckpt_ + "/model.safetensors"), "\"}\n  ]\n}\n");
  ASSERT_TRUE(WriteFileAtomically(ckpt_ + "/manifest.json", v1).ok());
  EXPECT_TRUE(VerifyCheckpoint(ckpt_).ok());  // still listed and fetched
  State target;
  auto m = LoadCheckpoint(ckpt_, kModel, target.Buffers());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition)
      << m.status();
}

TEST(SafetensorsTest, TruncatedFileIsDataLoss) {
  const std::string dir = FreshDir("trunc");
  fs::create_directories(dir);
  std::vector<float> x(16, 1.0f);
  const std::string path = dir + "/x.safetensors";
  ASSERT_TRUE(WriteSafetensors(path, {{"x", {4, 4}, x.data()}}, {}).ok());
  fs::resize_file(path, fs::file_size(path) - 8);
  auto h = ReadSafetensorsHeader(path);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(h.status().message().find(path), absl::string_view::npos);
}

}  // namespace
}  // namespace stronghold::core
