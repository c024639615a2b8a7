#include "core/model/gpt.h"

namespace stronghold::core::gpt {

namespace F = torch::nn::functional;

// LibTorch's CPU kernels for the embedding's backward and LayerNorm's
// weight and bias gradients add up their terms in the tensor's own type
// when it is fp16 or bf16 (measured on 2.11: 8192 terms of 1.015625 sum to
// 4096 in fp16 and 512 in bf16, not 8320), and LayerNorm's partial sums are
// per intra-op thread, so the bits depend on the machine's core count.
// CUDA's kernels sum in fp32. Where the CPU would round each partial sum,
// these ops run in fp32 and round once; on CUDA (and in fp32) they are
// unchanged.

bool SumsInOwnType(const torch::Tensor& t) {
  return t.is_cpu() && (t.scalar_type() == torch::kHalf ||
                        t.scalar_type() == torch::kBFloat16);
}

torch::Tensor View(const torch::Tensor& flat, const TensorSlice& slice) {
  return flat.narrow(0, slice.offset, slice.numel()).view(slice.shape);
}

torch::Tensor Lookup(const torch::Tensor& table, const torch::Tensor& tokens) {
  if (!SumsInOwnType(table)) return torch::embedding(table, tokens);
  // The cast is exact both ways, so forward is the same bits; backward sums
  // each row's gradient in fp32 and rounds it once.
  return torch::embedding(table.to(torch::kFloat32), tokens)
      .to(table.scalar_type());
}

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias) {
  const int64_t h = x.size(-1);
  if (!SumsInOwnType(x)) return torch::layer_norm(x, {h}, weight, bias);
  // As autocast does for layer_norm: in fp32, the output rounded once.
  return torch::layer_norm(x.to(torch::kFloat32), {h},
                           weight.to(torch::kFloat32), bias.to(torch::kFloat32))
      .to(x.scalar_type());
}

torch::Tensor Embed(const torch::Tensor& embedding, const BufferLayout& layout,
                    const torch::Tensor& tokens) {
  const torch::Tensor wte = View(embedding, layout.tensor("wte.weight"));
  const torch::Tensor wpe = View(embedding, layout.tensor("wpe.weight"));
  const int64_t seq = tokens.size(1);
  return Lookup(wte, tokens) + wpe.narrow(0, 0, seq);
}

torch::Tensor Block(const torch::Tensor& block, const BufferLayout& layout,
                    const torch::Tensor& x, int heads) {
  auto w = [&](std::string_view name) {
    return View(block, layout.tensor(name));
  };
  const int64_t batch = x.size(0), seq = x.size(1), h = x.size(2);
  const int64_t head_dim = h / heads;

  torch::Tensor a = LayerNorm(x, w("ln1.weight"), w("ln1.bias"));
  torch::Tensor qkv =
      torch::linear(a, w("attn.qkv.weight"), w("attn.qkv.bias"));
  // [B, S, 3h] -> [3, B, heads, S, head_dim]
  qkv = qkv.view({batch, seq, 3, heads, head_dim}).permute({2, 0, 3, 1, 4});
  torch::Tensor att = at::scaled_dot_product_attention(
      qkv[0], qkv[1], qkv[2], /*attn_mask=*/{}, /*dropout_p=*/0.0,
      /*is_causal=*/true);
  att = att.transpose(1, 2).reshape({batch, seq, h});
  torch::Tensor y =
      x + torch::linear(att, w("attn.proj.weight"), w("attn.proj.bias"));

  torch::Tensor m = LayerNorm(y, w("ln2.weight"), w("ln2.bias"));
  m = torch::gelu(torch::linear(m, w("mlp.fc1.weight"), w("mlp.fc1.bias")),
                  "tanh");
  return y + torch::linear(m, w("mlp.fc2.weight"), w("mlp.fc2.bias"));
}

torch::Tensor HeadLoss(const torch::Tensor& final_norm,
                       const BufferLayout& final_layout,
                       const torch::Tensor& embedding,
                       const BufferLayout& embedding_layout,
                       const torch::Tensor& x, const torch::Tensor& targets) {
  torch::Tensor y =
      LayerNorm(x, View(final_norm, final_layout.tensor("lnf.weight")),
                View(final_norm, final_layout.tensor("lnf.bias")));
  const torch::Tensor wte =
      View(embedding, embedding_layout.tensor("wte.weight"));
  torch::Tensor logits = torch::matmul(y, wte.t());  // [B, S, V]
  // .to() is a no-op for fp32 logits.
  return torch::cross_entropy_loss(
      logits.view({-1, logits.size(-1)}).to(torch::kFloat32),
      targets.reshape({-1}));
}

torch::Tensor LossObjective(const torch::Tensor& loss, int micro_batches,
                            double loss_scale) {
  torch::Tensor objective = loss / micro_batches;
  return loss_scale == 1.0 ? objective : objective * loss_scale;
}

}  // namespace stronghold::core::gpt
