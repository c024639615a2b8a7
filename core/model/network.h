// The model's forward as the engine and the reference step call it: each
// function runs the job's architecture (core/model/gpt.h or
// core/model/llama.h) on the same flat buffers, so nothing in the schedule
// depends on the architecture.
//
// Includes LibTorch: include only from the few .cc files that compute.
#ifndef STRONGHOLD_CORE_MODEL_NETWORK_H_
#define STRONGHOLD_CORE_MODEL_NETWORK_H_

#include <torch/torch.h>

#include "core/model/gpt_layout.h"
#include "core/plan/job_config.h"

namespace stronghold::core::net {

// tokens [B, S] int64 -> x [B, S, h] (the "embedding" buffer).
torch::Tensor Embed(const torch::Tensor& embedding, const BufferLayout& layout,
                    const torch::Tensor& tokens, const ModelConfig& model);

// One block ("layers.{i}"): x [B, S, h] -> [B, S, h].
torch::Tensor Block(const torch::Tensor& block, const BufferLayout& layout,
                    const torch::Tensor& x, const ModelConfig& model);

// The final norm, the LM head (tied to the embedding's wte, or the final
// buffer's lm_head) and the mean cross-entropy in fp32 (an fp32 scalar).
torch::Tensor HeadLoss(const torch::Tensor& final_norm,
                       const BufferLayout& final_layout,
                       const torch::Tensor& embedding,
                       const BufferLayout& embedding_layout,
                       const torch::Tensor& x, const torch::Tensor& targets,
                       const ModelConfig& model);

}  // namespace stronghold::core::net

#endif  // STRONGHOLD_CORE_MODEL_NETWORK_H_
