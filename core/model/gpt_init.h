// Deterministic GPT initialization in plain C++ (no LibTorch), so the initial
// weights depend only on (seed, buffer) and never on the device, the tier or
// the order buffers are created in:
//   weight matrices ~ N(0, 0.02); attn.proj and mlp.fc2 (llama: mlp.down)
//   ~ N(0, 0.02/sqrt(2L)) (GPT-2's residual scaling); LayerNorm and RMSNorm
//   gains 1; biases 0.
#ifndef STRONGHOLD_CORE_MODEL_GPT_INIT_H_
#define STRONGHOLD_CORE_MODEL_GPT_INIT_H_

#include <cstdint>

#include "core/model/gpt_layout.h"

namespace stronghold::core {

// Fills `data` (layout.count floats) for buffer number `index` of
// ModelLayout() (0 = embedding).
void InitBuffer(const BufferLayout& layout, const ModelConfig& model,
                uint64_t seed, int index, float* data);

// Elements [begin, end) of what InitBuffer fills, into `data` (end - begin
// floats): a data-parallel rank's slice (core/plan/shard.h), the same bits
// as one rank's. Draws the whole buffer in a temporary array.
void InitBufferRange(const BufferLayout& layout, const ModelConfig& model,
                     uint64_t seed, int index, int64_t begin, int64_t end,
                     float* data);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_MODEL_GPT_INIT_H_
