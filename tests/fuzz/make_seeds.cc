// Writes the fuzzers' seed corpora (tests/fuzz/<target>/corpus/) with the
// project's own writers, so every seed is a real file or message of the
// kind the daemon reads: safetensors files from WriteSafetensors, manifests
// from ManifestToJson, job specs from ToJobSpec, token files as the data
// docs describe them. Run from the repository root:
//   tests/fuzz/build_and_run.sh --seeds
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/checkpoint/checkpoint_manifest.h"
#include "core/checkpoint/safetensors.h"
#include "core/plan/job_config.h"
#include "core/util/file_util.h"
#include "server/proto_convert.h"

namespace stronghold {
namespace {

namespace fs = std::filesystem;

void Put(const std::string& target, const std::string& name,
         const std::string& bytes) {
  const fs::path dir = fs::path("tests/fuzz") / target / "corpus";
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
  std::printf("%s/%s: %zu bytes\n", dir.c_str(), name.c_str(), bytes.size());
}

std::string Slurp(const std::string& path) {
  return core::ReadFile(path).value();
}

// The dataset fuzzer's 14 configuration bytes (dataset_fuzzer.cc), then tokens.
std::string TokenFile(uint8_t width_and_name, uint8_t seq_len, uint32_t vocab,
                      int width, const std::vector<uint32_t>& tokens) {
  std::string out;
  out += static_cast<char>(width_and_name);
  out += static_cast<char>(seq_len - 1);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((vocab - 2) >> (8 * i));
  for (int i = 0; i < 8; ++i) out += static_cast<char>(0x5A + i);  // the seed
  for (uint32_t t : tokens) {
    for (int i = 0; i < width; ++i) out += static_cast<char>(t >> (8 * i));
  }
  return out;
}

void Safetensors(const std::string& scratch) {
  std::vector<float> a(6), b(4);
  for (size_t i = 0; i < a.size(); ++i) a[i] = 0.5f * i;
  for (size_t i = 0; i < b.size(); ++i) b[i] = -1.0f * i;
  const std::string path = scratch + "/x.safetensors";
  core::WriteSafetensors(
      path, {{"wte.weight", {2, 3}, a.data()}, {"ln_f.bias", {4}, b.data()}},
      {{"step", "3"}, {"format", "stronghold"}})
      .value();
  const std::string file = Slurp(path);
  Put("safetensors", "two_tensors_with_metadata.safetensors", file);
  core::WriteSafetensors(path, {}, {}).value();
  Put("safetensors", "empty.safetensors", Slurp(path));
  // The header alone is a JSON seed too.
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= uint64_t{static_cast<unsigned char>(file[i])} << (8 * i);
  Put("json", "safetensors_header.json", file.substr(8, n));
}

void Manifests() {
  core::CheckpointManifest m;
  m.model = {.layers = 2,
             .hidden = 64,
             .heads = 4,
             .seq_len = 64,
             .vocab = 256,
             .padded_vocab = 256,
             .parameters = 120'576};
  m.position = {.step = 30,
                .optimizer_step = 30,
                .seed = 1234,
                .batch = 8,
                .next_sample = 240,
                .lr = 1e-3 / 3,
                .next_lr = 2e-3 / 7};
  m.files = {{"model.safetensors", 4096, std::string(64, 'a')},
             {"optimizer.safetensors", 8192, std::string(64, 'b')},
             {"job.json", 512, std::string(64, 'c')}};
  Put("manifest", "v2_fp32.json", core::ManifestToJson(m));
  Put("json", "manifest_v2.json", core::ManifestToJson(m));
  m.position.optimizer_step = 27;
  m.position.loss_scale = 8192;
  m.position.loss_scale_good_steps = 1999;
  Put("manifest", "v2_fp16_loss_scale.json", core::ManifestToJson(m));
  Put("manifest", "v1.json",
      "{\n  \"format\": \"stronghold-checkpoint-v1\",\n  \"step\": 10,\n  "
      "\"files\": [\n    {\"name\": \"model.safetensors\", \"bytes\": 123, "
      "\"sha256\": \"" +
          std::string(64, 'd') + "\"}\n  ]\n}\n");
}

void Specs() {
  core::JobConfig c;  // the defaults of docs/api.md
  Put("spec", "defaults.pb", server::ToJobSpec(c).SerializeAsString());
  c.name = "quickstart";  // deploy/quickstart.sh's job
  c.model = {
      .layers = 4, .hidden = 128, .heads = 4, .seq_len = 128, .vocab = 256};
  c.training.batch = 16;
  c.training.micro_batch = 8;
  c.training.steps = 200;
  c.checkpoint.every_steps = 100;
  c.offload.method = core::OffloadMethod::kStronghold;
  c.offload.gpu_memory_budget_bytes = 27 << 20;
  Put("spec", "quickstart_stronghold.pb",
      server::ToJobSpec(c).SerializeAsString());
  c.training.precision = core::Precision::kBf16;
  c.offload.window = 2;
  c.offload.device_resident_layers = 1;
  c.offload.speculative_updates = true;
  c.offload.device_embedding_optimizer = true;
  c.offload.host_memory_budget_bytes = 64 << 20;
  c.offload.ssd_dirs = {"/tmp"};
  Put("spec", "bf16_window_ssd.pb", server::ToJobSpec(c).SerializeAsString());
  c = core::JobConfig();
  c.offload.method = core::OffloadMethod::kL2L;
  c.training.precision = core::Precision::kFp16;
  c.model = {.layers = 32,
             .hidden = 2048,
             .heads = 16,
             .seq_len = 1024,
             .vocab = 50257};
  Put("spec", "l2l_fp16_large.pb", server::ToJobSpec(c).SerializeAsString());
}

void Tokens() {
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 40; ++i) tokens.push_back((i * 37) % 1000);
  // Byte 0: token_bytes {0, 2, 4}[b % 3], file name {.u16, .u32, .bin}[(b / 3)
  // % 3].
  Put("dataset", "u16_by_name.bin", TokenFile(0 + 3 * 0, 8, 1000, 2, tokens));
  Put("dataset", "u32_by_name.bin", TokenFile(0 + 3 * 1, 8, 1000, 4, tokens));
  Put("dataset", "u16_explicit.bin", TokenFile(1 + 3 * 2, 16, 1000, 2, tokens));
  tokens.push_back(70000);
  Put("dataset", "u32_explicit_large_vocab.bin",
      TokenFile(2 + 3 * 2, 4, 100000, 4, tokens));
}

// The megatron_index fuzzer's 7 configuration bytes (seq_len, vocab, the
// index's length), a Megatron index of `lengths` as Megatron's writer lays
// it out (dtype `code`, ids `width` bytes), then the .bin of `tokens`.
std::string IndexedDataset(uint8_t seq_len, uint32_t vocab, int code, int width,
                           const std::vector<int32_t>& lengths,
                           const std::vector<int64_t>& documents,
                           const std::vector<uint32_t>& tokens) {
  auto put = [](std::string& out, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out += static_cast<char>(v >> (8 * i));
  };
  std::string index("MMIDIDX\0\0", 9);
  put(index, 1, 8);
  put(index, code, 1);
  put(index, lengths.size(), 8);
  put(index, documents.size(), 8);
  for (int32_t l : lengths) put(index, static_cast<uint32_t>(l), 4);
  int64_t at = 0;
  for (int32_t l : lengths) {
    put(index, at, 8);
    at += int64_t{l} * width;
  }
  for (int64_t d : documents) put(index, d, 8);
  std::string out;
  out += static_cast<char>(seq_len - 1);
  put(out, vocab - 2, 4);
  put(out, index.size(), 2);
  out += index;
  for (uint32_t t : tokens) put(out, t, width);
  return out;
}

void IndexedDatasets() {
  std::vector<uint32_t> tokens;
  for (uint32_t i = 0; i < 40; ++i) tokens.push_back((i * 37) % 1000);
  Put("megatron_index", "uint16_three_documents.bin",
      IndexedDataset(8, 1000, 8, 2, {10, 20, 10}, {0, 1, 2, 3}, tokens));
  Put("megatron_index", "int32_sequences_in_two_documents.bin",
      IndexedDataset(4, 1000, 4, 4, {5, 0, 35}, {0, 2, 3}, tokens));
  Put("megatron_index", "uint8_one_document.bin",
      IndexedDataset(16, 256, 1, 1, {40}, {0, 1}, tokens));
  Put("megatron_index", "int64_empty_documents.bin",
      IndexedDataset(2, 1000, 5, 8, {20, 20}, {0, 0, 1, 2, 2}, tokens));
}

void FaultSpecs() {
  Put("fault_spec", "eio_read.txt", "eio_read@2");
  Put("fault_spec", "torn_and_eio.txt", "torn_write@1,eio_read@3");
  Put("fault_spec", "enospc.txt", "enospc_write@2");
  Put("fault_spec", "eio_write_far.txt", "eio_write@61");
}

void Json() {
  Put("json", "every_kind.json",
      "{\"a\": [1, -2.5e-3, 0, 1E+2, 18446744073709551615, true, false, "
      "null],\n \"\\u00e9\\ud83d\\ude00\": \"x\\n\\t\\\"\\\\\\/\", "
      "\"\xC3\xA9\": {\"nested\": [[{}]]}}\n");
}

}  // namespace
}  // namespace stronghold

int main() {
  const std::string scratch =
      std::filesystem::temp_directory_path() / "stronghold-seeds";
  std::filesystem::create_directories(scratch);
  stronghold::Safetensors(scratch);
  stronghold::Manifests();
  stronghold::Specs();
  stronghold::Tokens();
  stronghold::IndexedDatasets();
  stronghold::FaultSpecs();
  stronghold::Json();
  std::filesystem::remove_all(scratch);
  return 0;
}
