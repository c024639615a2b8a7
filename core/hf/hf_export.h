// Exporting a checkpoint in the Hugging Face layout (docs/finetune.md):
//   <checkpoint>/hf/config.json                      GPT2LMHeadModel
//   <checkpoint>/hf/generation_config.json
//   <checkpoint>/hf/model-0000k-of-0000n.safetensors  fp32, names and
//                                                    layouts as transformers
//                                                    saves them
//   <checkpoint>/hf/model.safetensors.index.json
// written on first request from the checkpoint's model.safetensors, one
// tensor at a time (the largest tensor is the only copy held), every file
// fsynced, into a hidden directory renamed into place: an export is
// complete or invisible, and concurrent requests race harmlessly (the first
// rename wins, the others' copies are removed). A crash mid-export leaves a
// hidden .tmp-hf-* directory inside the checkpoint, which goes when the
// checkpoint is pruned or deleted. The export is not in the manifest and
// not counted in the per-principal checkpoint bytes. The mapping is
// hf_model.h's, the importer's.
#ifndef STRONGHOLD_CORE_HF_HF_EXPORT_H_
#define STRONGHOLD_CORE_HF_HF_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace stronghold::core {

inline constexpr char kHfExportDir[] = "hf";

struct HfExportOptions {
  // A shard holds tensors up to this many bytes (a larger tensor gets a
  // shard of its own). transformers' own default is 5 GB; 2 GiB keeps each
  // download's file well inside every filesystem's and tool's limits.
  int64_t max_shard_bytes = int64_t{2} << 30;
};

// The files of <checkpoint_dir>/hf, writing them first when they are not
// there. Errors: the checkpoint's (checkpoint_reader.h: DATA_LOSS for a
// damaged one), or INTERNAL naming the file that could not be written.
absl::StatusOr<std::vector<std::string>> EnsureHfExport(
    const std::string& checkpoint_dir, const HfExportOptions& options = {});

// Writes the export of `checkpoint_dir` into `out_dir` (an existing, empty
// directory), every file fsynced, the directory too. Returns the files.
absl::StatusOr<std::vector<std::string>> WriteHfExport(
    const std::string& checkpoint_dir, const std::string& out_dir,
    const HfExportOptions& options = {});

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_HF_HF_EXPORT_H_
