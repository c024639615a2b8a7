// Where every GPT parameter lives: the model's weights are kept in one flat
// fp32 buffer per layer (one large copy per layer between tiers), and each
// tensor is a view at a fixed offset in its buffer. This header is the single
// source of those offsets, shapes and names (safetensors names included).
//
// Buffers, in execution order (V = padded vocabulary, docs/model.md):
//   GPT:
//   "embedding"    wte [V, h], wpe [S, h]
//   "layers.{i}"   one transformer block, 12h^2 + 13h parameters
//   "final_norm"   lnf.weight [h], lnf.bias [h]
//   llama (hd = h / heads, kv = kv_heads, I = intermediate):
//   "embedding"    wte [V, h]
//   "layers.{i}"   attn.qkv.weight [(heads + 2kv) hd, h] (q, k, v heads),
//                  attn.proj.weight [h, heads hd], mlp.gate_up.weight [2I, h]
//                  (gate, up), mlp.down.weight [h, I]; ln1.weight [h],
//                  ln2.weight [h]
//   "final_norm"   lm_head.weight [V, h] (untied only), norm.weight [h]
// Weight matrices come first in each buffer, so AdamW's weight decay applies
// to the prefix [0, decay_count) and biases/norm gains are not decayed. Each
// buffer's size is ModelConfig's (parameters_per_layer() etc.), CHECKed.
#ifndef STRONGHOLD_CORE_MODEL_GPT_LAYOUT_H_
#define STRONGHOLD_CORE_MODEL_GPT_LAYOUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/plan/job_config.h"

namespace stronghold::core {

struct TensorSlice {
  std::string name;            // e.g. "attn.qkv.weight"
  int64_t offset = 0;          // elements from the buffer's start
  std::vector<int64_t> shape;  // row-major
  int64_t numel() const;
};

struct BufferLayout {
  std::string name;         // "embedding", "layers.3", "final_norm"
  int64_t count = 0;        // fp32 elements
  int64_t decay_count = 0;  // [0, decay_count) gets weight decay
  std::vector<TensorSlice> tensors;
  const TensorSlice& tensor(std::string_view name) const;  // CHECKs it exists
};

BufferLayout EmbeddingLayout(const ModelConfig& model);
BufferLayout BlockLayout(const ModelConfig& model, int layer);
BufferLayout FinalNormLayout(const ModelConfig& model);

// All buffers in execution order: embedding, layers.0 .. layers.L-1,
// final_norm.
std::vector<BufferLayout> ModelLayout(const ModelConfig& model);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_MODEL_GPT_LAYOUT_H_
