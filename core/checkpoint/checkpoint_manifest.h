// manifest.json, the table of contents of a checkpoint directory: which
// files it holds (size and SHA-256 of each), the model's shape, and where
// training stands (step, learning rate, data position, seed). It is written
// last, so a directory with a valid manifest is a complete checkpoint.
//
// The manifest checks itself: its last member, "manifest_sha256", is the
// SHA-256 of the file with that member's 64 hex digits replaced by '0's. So
// a flipped byte anywhere in a checkpoint, the manifest included, is found
// and the damaged file named. Format: docs/checkpoints.md.
#ifndef STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_MANIFEST_H_
#define STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_MANIFEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

// Weights and optimizer state (v2). v1 (weights only, no self-digest) is
// still read so old checkpoints can be listed and fetched, not resumed.
inline constexpr char kCheckpointFormat[] = "stronghold-checkpoint-v2";
inline constexpr char kCheckpointFormatV1[] = "stronghold-checkpoint-v1";

struct ManifestFile {
  std::string name;  // plain file name inside the checkpoint directory
  int64_t bytes = 0;
  std::string sha256;  // lower-case hex
};

// Where training stands once `step` is done. Everything here but `step` can
// be recomputed from the job spec; it is recorded so that a resume can be
// checked and a checkpoint read without the spec.
struct TrainingPosition {
  int64_t step = 0;  // last finished optimizer step; resume runs step+1
  int64_t optimizer_step = 0;  // AdamW's bias-correction count (= step)
  uint64_t seed = 0;           // the only source of randomness (init, sampling)
  int batch = 0;               // sequences per step
  int64_t next_sample = 0;     // global index of the next sample: step * batch
  double lr = 0.0;             // learning rate of `step`
  double next_lr = 0.0;        // learning rate of step + 1
  // fp16's dynamic loss scale (core/engine/loss_scale.h) after `step`, and the
  // consecutive good steps at it; 0 = none (fp32, bf16, or a checkpoint
  // written before mixed precision: a resume then starts afresh).
  // optimizer_step is below `step` by the fp16 steps that were skipped.
  double loss_scale = 0.0;
  int64_t loss_scale_good_steps = 0;
};

// The model's shape as the manifest records it. Its own plain struct, not
// core/plan's ModelConfig, so the file format (and strongholdctl, which
// checks what it downloads with it) does not depend on the planner; the
// writer fills it with ManifestModelOf() (core/checkpoint/checkpoint.h).
struct ManifestModel {
  int layers = 0;
  int hidden = 0;
  int heads = 0;
  int seq_len = 0;
  int vocab = 0;  // as given
  // ModelConfig::vocab_multiple; manifests from before it was recorded read
  // as the default it then always was, 128.
  // (This library knows nothing of core/plan: the literals are
  // ModelConfig::kDefaultVocabMultiple and kMaxVocabMultiple.)
  int vocab_multiple = 128;
  static constexpr int kMaxVocabMultiple = 1024;
  // Derived from the shape by the writer, recorded for readers of the file:
  // the vocabulary rows allocated, and the parameter count. Absent from
  // manifests that never had them (read as 0).
  int64_t padded_vocab = 0;
  int64_t parameters = 0;
  // "gpt" or "llama" (docs/model.md). Written only for llama, with the
  // fields below; a manifest without it (every GPT's, and those written
  // before the llama architecture) reads as "gpt".
  std::string architecture = "gpt";
  int kv_heads = 0;
  int intermediate = 0;
  double rope_theta = 0;
  double norm_eps = 0;
  bool tie_embeddings = false;
};

struct CheckpointManifest {
  std::string format = kCheckpointFormat;
  TrainingPosition position;
  ManifestModel model;
  // Of the stored tensors (masters and moments are fp32 in every training
  // precision; the training precision is in job.json).
  std::string precision = "fp32";
  std::vector<ManifestFile> files;

  // The entry named `name`, or null.
  const ManifestFile* file(absl::string_view name) const;
};

// The manifest as JSON, self-digest included.
std::string ManifestToJson(const CheckpointManifest& manifest);

// Parses manifest.json text. DATA_LOSS naming `path` when it is not valid
// JSON, its self-digest does not match, or a field is missing or malformed.
absl::StatusOr<CheckpointManifest> ParseManifest(absl::string_view text,
                                                 const std::string& path);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_CHECKPOINT_CHECKPOINT_MANIFEST_H_
