// The Llama-family architecture's math (as Hugging Face's LlamaForCausalLM)
// as functions of flat per-layer weight buffers (core/model/gpt_layout.h),
// differentiable with respect to each buffer and the activation input:
// RMSNorm computed in fp32, rotary position embeddings in the rotate_half
// convention, grouped-query causal attention, a SwiGLU MLP, no biases.
//
// Includes LibTorch: include only from the few .cc files that compute.
#ifndef STRONGHOLD_CORE_MODEL_LLAMA_H_
#define STRONGHOLD_CORE_MODEL_LLAMA_H_

#include <torch/torch.h>

#include "core/model/gpt_layout.h"
#include "core/plan/job_config.h"

namespace stronghold::core::llama {

// x * rsqrt(mean(x^2) + eps) computed in fp32 and cast back to x's type,
// times the gain [h]. The gain's gradient is summed in fp32 on the host in
// fp16/bf16 (gpt::SumsInOwnType).
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight,
                      double eps);

// cos and sin [S, hd] for positions 0..S-1 in x's dtype and device:
// inv_freq = 1/theta^(arange(0, hd, 2)/hd) in fp32, freqs = pos x inv_freq,
// each repeated over the two halves of a head's dimensions.
std::pair<torch::Tensor, torch::Tensor> RotaryTables(int64_t seq,
                                                     int64_t head_dim,
                                                     double theta,
                                                     const torch::Tensor& like);

// x [B, n, S, hd] -> x * cos + rotate_half(x) * sin, where rotate_half pairs
// dimension d with d + hd/2 (not interleaved pairs).
torch::Tensor ApplyRotary(const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin);

// tokens [B, S] int64 -> x [B, S, h] = wte[tokens].
torch::Tensor Embed(const torch::Tensor& embedding, const BufferLayout& layout,
                    const torch::Tensor& tokens);

// One pre-norm block: x + attn(rms1(x)), then + mlp(rms2(.)).
// x [B, S, h] -> [B, S, h].
torch::Tensor Block(const torch::Tensor& block, const BufferLayout& layout,
                    const torch::Tensor& x, const ModelConfig& model);

// Final RMSNorm, the LM head (lm_head.weight in the final buffer, or wte when
// tied) and the mean cross-entropy in fp32 (float64 input: float64) over all
// B*S tokens, over the
// model's vocabulary (the padded rows' logits are left out, as the model
// would be used).
torch::Tensor HeadLoss(const torch::Tensor& final_norm,
                       const BufferLayout& final_layout,
                       const torch::Tensor& embedding,
                       const BufferLayout& embedding_layout,
                       const torch::Tensor& x, const torch::Tensor& targets,
                       const ModelConfig& model);

}  // namespace stronghold::core::llama

#endif  // STRONGHOLD_CORE_MODEL_LLAMA_H_
