// dataset_bench: how long Dataset::Fill takes per sample, for the builtin
// corpus (in memory) and for a token file (one pread of seq_len + 1 tokens
// per sample since issue 15; a memory mapping before), warm page cache. Not
// a test: it prints figures (docs/benchmarks.md, "Token files").
//
//   bazel run -c opt //core/tools:dataset_bench -- [--seq_len=1024]
//   [--samples=65536]
//       [--file_tokens=33554432] [--dir=/tmp]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"

ABSL_FLAG(int, seq_len, 1024, "tokens per sample");
ABSL_FLAG(int, samples, 1 << 16,
          "samples filled per measurement (in micro-batches of 8)");
ABSL_FLAG(int64_t, file_tokens, int64_t{1} << 25,
          "uint16 tokens in the token file");
ABSL_FLAG(std::string, dir, "/tmp",
          "where the token file is written (and removed)");

namespace stronghold::core {
namespace {

// The median of 5 passes of `samples` samples: microseconds per sample.
double MicrosPerSample(const Dataset& data, int samples) {
  const int seq = data.seq_len(), rows = 8;
  std::vector<int64_t> inputs(rows * seq), targets(rows * seq);
  std::vector<double> passes;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    for (int first = 0; first < samples; first += rows) {
      // (void): the same source measures Fill before (void) and after (Status).
      (void)data.Fill(/*seed=*/pass, first, rows, inputs.data(),
                      targets.data());
    }
    passes.push_back(std::chrono::duration<double, std::micro>(
                         std::chrono::steady_clock::now() - start)
                         .count() /
                     samples);
  }
  std::sort(passes.begin(), passes.end());
  return passes[2];
}

int Main() {
  const int seq = absl::GetFlag(FLAGS_seq_len),
            samples = absl::GetFlag(FLAGS_samples);
  auto builtin = Dataset::Open({.source = "builtin"}, 256, seq);
  if (!builtin.ok())
    return std::fprintf(stderr, "%s\n", builtin.status().ToString().c_str()), 1;
  const double b = MicrosPerSample(**builtin, samples);
  std::printf("builtin:    %8.2f us/sample  %10.0f samples/s  (seq_len %d)\n",
              b, 1e6 / b, seq);

  const std::string path = absl::StrCat(absl::GetFlag(FLAGS_dir),
                                        "/dataset_bench-", getpid(), ".u16");
  {
    std::vector<uint16_t> ids(absl::GetFlag(FLAGS_file_tokens));
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = static_cast<uint16_t>((i * 7919) % 50000);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(ids.data()),
               ids.size() * sizeof(uint16_t));
  }
  auto file = Dataset::Open({.source = path}, 50257, seq);
  if (!file.ok())
    return std::fprintf(stderr, "%s\n", file.status().ToString().c_str()), 1;
  const double f = MicrosPerSample(**file, samples);
  std::printf(
      "token file: %8.2f us/sample  %10.0f samples/s  (%lld tokens, warm "
      "cache)\n",
      f, 1e6 / f, static_cast<long long>((*file)->num_tokens()));
  unlink(path.c_str());
  return 0;
}

}  // namespace
}  // namespace stronghold::core

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return stronghold::core::Main();
}
