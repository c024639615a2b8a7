// A checkpoint manifest (manifest.json) from arbitrary bytes through
// core/checkpoint's ParseManifest. A v2 manifest checks its own SHA-256
// first, which random bytes never match; so where the input has a
// "manifest_sha256" member, the fuzzer writes the right digest into it
// before parsing, and the reader's field checks are what gets fuzzed.
// Besides the sanitizers it checks that what parses means one thing: written
// back with ManifestToJson it parses to the same manifest, field by field.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/checkpoint/checkpoint_manifest.h"
#include "core/util/sha256.h"
#include "tests/fuzz/fuzz_util.h"

namespace stronghold::fuzz {
namespace {

constexpr char kDigestKey[] = "\"manifest_sha256\": \"";
constexpr char kPath[] = "fuzz/manifest.json";

// `text` with the 64 characters after its first digest key replaced by the
// digest ParseManifest expects there.
std::string WithValidDigest(std::string text) {
  const size_t at = text.find(kDigestKey);
  if (at == std::string::npos) return text;
  const size_t hole = at + sizeof(kDigestKey) - 1;
  if (hole + 64 > text.size()) return text;
  text.replace(hole, 64, std::string(64, '0'));
  text.replace(hole, 64, core::Sha256Hex(text));
  return text;
}

void CheckSame(const core::CheckpointManifest& a,
               const core::CheckpointManifest& b) {
  const core::TrainingPosition &p = a.position, &q = b.position;
  FUZZ_CHECK(a.format == b.format, a.format, " vs ", b.format);
  FUZZ_CHECK(p.step == q.step && p.optimizer_step == q.optimizer_step &&
                 p.seed == q.seed && p.batch == q.batch &&
                 p.next_sample == q.next_sample,
             "counts differ after a round trip");
  FUZZ_CHECK(p.lr == q.lr && p.next_lr == q.next_lr, "lr ", p.lr, " vs ", q.lr);
  FUZZ_CHECK(p.loss_scale == q.loss_scale &&
                 p.loss_scale_good_steps == q.loss_scale_good_steps,
             "loss_scale ", p.loss_scale, "/", p.loss_scale_good_steps, " vs ",
             q.loss_scale, "/", q.loss_scale_good_steps);
  FUZZ_CHECK(a.model.layers == b.model.layers &&
                 a.model.hidden == b.model.hidden &&
                 a.model.heads == b.model.heads &&
                 a.model.seq_len == b.model.seq_len &&
                 a.model.vocab == b.model.vocab &&
                 a.model.vocab_multiple == b.model.vocab_multiple &&
                 a.model.padded_vocab == b.model.padded_vocab &&
                 a.model.parameters == b.model.parameters,
             "model differs after a round trip");
  FUZZ_CHECK(a.precision == b.precision, a.precision, " vs ", b.precision);
  FUZZ_CHECK(a.files.size() == b.files.size(), "file count");
  for (size_t i = 0; i < a.files.size(); ++i) {
    FUZZ_CHECK(a.files[i].name == b.files[i].name &&
                   a.files[i].bytes == b.files[i].bytes &&
                   a.files[i].sha256 == b.files[i].sha256,
               "file ", i);
  }
}

}  // namespace
}  // namespace stronghold::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stronghold;
  const std::string text = fuzz::WithValidDigest(
      std::string(reinterpret_cast<const char*>(data), size));
  absl::StatusOr<core::CheckpointManifest> m =
      core::ParseManifest(text, fuzz::kPath);
  if (!m.ok()) {
    FUZZ_CHECK(m.status().code() == absl::StatusCode::kDataLoss,
               m.status().ToString());
    FUZZ_CHECK(absl::StrContains(m.status().message(), fuzz::kPath),
               m.status().ToString());
    return 0;
  }
  const std::string again = core::ManifestToJson(*m);
  absl::StatusOr<core::CheckpointManifest> back =
      core::ParseManifest(again, fuzz::kPath);
  FUZZ_CHECK(back.ok(),
             "written back, it does not parse: ", back.status().ToString(),
             "\n", again);
  fuzz::CheckSame(*m, *back);
  return 0;
}
