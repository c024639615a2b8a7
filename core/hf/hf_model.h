// Hugging Face model directories as this trainer sees them: what a
// config.json means for our ModelConfig, and which tensor of the
// directory's safetensors files is which slice of which of our flat
// buffers (core/model/gpt_layout.h). The importer (hf_import.h) and the
// exporter (hf_export.h) both read this one table, so a name or a
// transposition cannot differ between the way in and the way out.
//
// Supported: GPT2LMHeadModel (our GPT layout: pre-LayerNorm, GELU tanh,
// tied head, learned positions; GPT-2's Conv1D stores its weights
// [in, out], ours are [out, in], so they are transposed) and
// LlamaForCausalLM / MistralForCausalLM without a sliding window (our llama
// layout: q, k and v projections stacked into attn.qkv, gate and up into
// mlp.gate_up; RoPE without scaling). Everything else is refused naming the
// architecture or the option (docs/finetune.md lists why).
//
// Plain C++: no LibTorch, no file access (the caller reads the bytes).
#ifndef STRONGHOLD_CORE_HF_HF_MODEL_H_
#define STRONGHOLD_CORE_HF_HF_MODEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/model/gpt_layout.h"
#include "core/plan/job_config.h"

namespace stronghold::core {

inline constexpr char kGpt2Architecture[] = "GPT2LMHeadModel";
inline constexpr char kLlamaArchitecture[] = "LlamaForCausalLM";
// A llama's training length when the spec names none: its context
// (max_position_embeddings), at most this.
inline constexpr int64_t kDefaultLlamaSeqLen = 4096;
// The largest config.json read: real ones are a few KiB.
inline constexpr int64_t kMaxHfConfigBytes = int64_t{1} << 20;

// What a config.json describes.
struct HfModel {
  std::string architecture;  // config.json's "architectures"[0]
  // The sizes, with vocab_multiple 1 (an imported vocabulary is never
  // padded) and seq_len = the position table's rows (GPT-2's n_positions).
  ModelConfig model;
  // GPT-2: rows of wpe in the file (n_positions); a job may train on fewer
  // (model.seq_len), taking the first rows.
  // Llama: max_position_embeddings (the model's context).
  int64_t positions = 0;
};

// Parses config.json's text (`name` for messages). INVALID_ARGUMENT naming
// the key for a missing or out-of-range size, and naming the architecture
// (or the option, e.g. activation_function) for what this trainer cannot
// reproduce exactly.
absl::StatusOr<HfModel> ParseHfConfig(absl::string_view text,
                                      absl::string_view name);

// The model fields a job spec set (unset: taken from config.json).
struct RequestedModel {
  std::optional<Architecture> architecture;
  std::optional<int> layers, hidden, heads, seq_len, vocab, vocab_multiple;
  std::optional<int> kv_heads, intermediate;
  std::optional<double> rope_theta, norm_eps;
  std::optional<bool> tie_embeddings;
};

// `hf`'s sizes, with the requested ones checked against them: a field that
// contradicts config.json is INVALID_ARGUMENT naming both ("model.hidden
// 128 contradicts config.json n_embd 64"). seq_len may be below GPT-2's
// n_positions (the first rows of wpe are used), not above.
absl::StatusOr<ModelConfig> ResolveHfModel(const HfModel& hf,
                                           const RequestedModel& requested);

// One tensor of a Hugging Face directory and where it goes in our buffer.
struct HfTensor {
  std::string name;            // e.g. "transformer.h.0.attn.c_attn.weight"
  std::string alias;           // also accepted on import ("h.0...."); or ""
  std::vector<int64_t> shape;  // as the directory stores it
  std::string target;          // our tensor in the buffer ("attn.qkv.weight")
  int64_t target_row = 0;      // the first row of `target` it fills
  int64_t rows = 0;            // rows of it that are ours (<= shape[0])
  bool transposed = false;     // stored [in, out]; ours is [out, in]
};

// The tensors of `layout` (a buffer of ModelLayout(hf.model)) in file
// order; together they fill every element of the buffer once.
std::vector<HfTensor> HfTensorsOf(const HfModel& hf,
                                  const BufferLayout& layout);

// Whether a tensor in a directory may be left unread: buffers transformers
// keeps in some files (GPT-2's attention masks) and the tied head.
bool IgnoredHfTensor(const HfModel& hf, absl::string_view name);

// How a trained `model` exports. A GPT: its whole padded vocabulary
// (vocab_size = padded_vocab(): the padded rows are trained as any other,
// and a token file never names them) and its position table (n_positions =
// seq_len). A llama: its `vocab` rows (its loss never reads the padded ones)
// and max_position_embeddings = seq_len.
HfModel HfModelOf(const ModelConfig& model);

// config.json and generation_config.json of HfModelOf(model).
std::string HfConfigJson(const ModelConfig& model);
std::string HfGenerationConfigJson(const ModelConfig& model);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_HF_HF_MODEL_H_
