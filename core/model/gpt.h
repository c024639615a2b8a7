// The GPT's math as functions of flat per-layer weight buffers (see
// core/model/gpt_layout.h), so the same code runs whether a layer's buffer is
// resident or was just copied into a device slot. Each function is
// differentiable with respect to its flat buffer and its activation input.
//
// Includes LibTorch: include only from the few .cc files that compute.
#ifndef STRONGHOLD_CORE_MODEL_GPT_H_
#define STRONGHOLD_CORE_MODEL_GPT_H_

#include <torch/torch.h>

#include "core/model/gpt_layout.h"
#include "core/plan/job_config.h"

namespace stronghold::core::gpt {

// Whether LibTorch's CPU kernels would sum this tensor's reductions in its
// own type (fp16/bf16 on the host); the ops below then compute in fp32.
bool SumsInOwnType(const torch::Tensor& t);

// A view of one tensor of a flat buffer (differentiable).
torch::Tensor View(const torch::Tensor& flat, const TensorSlice& slice);

// table [V, h], tokens [B, S] int64 -> [B, S, h] = table[tokens]. Its
// gradient sums each row's terms in fp32, in every precision and on every
// device (on CPU LibTorch's own kernel would sum fp16/bf16 in fp16/bf16).
torch::Tensor Lookup(const torch::Tensor& table, const torch::Tensor& tokens);

// LayerNorm over the last dimension (weight and bias [h]); its gradients are
// summed in fp32 in every precision and on every device, as Lookup's.
torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias);

// tokens [B, S] int64 -> x [B, S, h] = wte[tokens] + wpe[0..S).
torch::Tensor Embed(const torch::Tensor& embedding, const BufferLayout& layout,
                    const torch::Tensor& tokens);

// One pre-LayerNorm block: x + attn(ln1(x)), then + mlp(ln2(.)).
// x [B, S, h] -> [B, S, h].
torch::Tensor Block(const torch::Tensor& block, const BufferLayout& layout,
                    const torch::Tensor& x, int heads);

// Final LayerNorm, tied LM head and mean cross-entropy over all B*S tokens.
// The logits are computed in the weights' precision and the cross-entropy in
// fp32 (a bf16/fp16 softmax over the vocabulary loses too much); the loss is
// fp32.
torch::Tensor HeadLoss(const torch::Tensor& final_norm,
                       const BufferLayout& final_layout,
                       const torch::Tensor& embedding,
                       const BufferLayout& embedding_layout,
                       const torch::Tensor& x, const torch::Tensor& targets);

// What backward starts from: loss / micro_batches (gradient accumulation),
// times `loss_scale` when it is not 1 (fp16). With a scale of 1 it is the
// fp32 expression exactly, so fp32 training is unchanged bit for bit.
torch::Tensor LossObjective(const torch::Tensor& loss, int micro_batches,
                            double loss_scale);

}  // namespace stronghold::core::gpt

#endif  // STRONGHOLD_CORE_MODEL_GPT_H_
