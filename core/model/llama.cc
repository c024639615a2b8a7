#include "core/model/llama.h"

#include "core/model/gpt.h"

namespace stronghold::core::llama {

torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight,
                      double eps) {
  // At least fp32 (a float64 input, as the gradient checks use, stays so).
  const torch::Tensor x32 =
      x.to(torch::promote_types(x.scalar_type(), torch::kFloat32));
  const torch::Tensor normed =
      (x32 * torch::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps))
          .to(x.scalar_type());
  if (!gpt::SumsInOwnType(x)) return weight * normed;
  // A product of two fp16/bf16 numbers is exact in fp32, so forward is the
  // same bits; backward sums the gain's gradient in fp32 and rounds once.
  return (weight.to(torch::kFloat32) * normed.to(torch::kFloat32))
      .to(x.scalar_type());
}

std::pair<torch::Tensor, torch::Tensor> RotaryTables(
    int64_t seq, int64_t head_dim, double theta, const torch::Tensor& like) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  const torch::Tensor exponent =
      torch::arange(0, head_dim, 2, torch::TensorOptions().dtype(torch::kInt64))
          .to(torch::kFloat32) /
      static_cast<double>(head_dim);
  const torch::Tensor inv_freq = 1.0 / torch::pow(theta, exponent);
  const torch::Tensor positions = torch::arange(seq, f32);
  const torch::Tensor freqs = torch::outer(positions, inv_freq);  // [S, hd/2]
  const torch::Tensor emb = torch::cat({freqs, freqs}, -1);       // [S, hd]
  const auto out =
      torch::TensorOptions().dtype(like.scalar_type()).device(like.device());
  return {emb.cos().to(out), emb.sin().to(out)};
}

torch::Tensor ApplyRotary(const torch::Tensor& x, const torch::Tensor& cos,
                          const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated =
      torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

torch::Tensor Embed(const torch::Tensor& embedding, const BufferLayout& layout,
                    const torch::Tensor& tokens) {
  return gpt::Lookup(gpt::View(embedding, layout.tensor("wte.weight")), tokens);
}

torch::Tensor Block(const torch::Tensor& block, const BufferLayout& layout,
                    const torch::Tensor& x, const ModelConfig& m) {
  auto w = [&](std::string_view name) {
    return gpt::View(block, layout.tensor(name));
  };
  const int64_t batch = x.size(0), seq = x.size(1);
  const int64_t hd = m.head_dim(), heads = m.heads, kv = m.key_value_heads();

  const torch::Tensor a = RmsNorm(x, w("ln1.weight"), m.norm_eps);
  const torch::Tensor qkv = torch::linear(a, w("attn.qkv.weight"));
  // [B, S, n*hd] -> [B, n, S, hd]
  auto heads_of = [&](int64_t first, int64_t n) {
    return qkv.narrow(-1, first * hd, n * hd)
        .view({batch, seq, n, hd})
        .transpose(1, 2);
  };
  const auto [cos, sin] = RotaryTables(seq, hd, m.rope_theta, x);
  const torch::Tensor q = ApplyRotary(heads_of(0, heads), cos, sin);
  torch::Tensor k = ApplyRotary(heads_of(heads, kv), cos, sin);
  torch::Tensor v = heads_of(heads + kv, kv);
  if (kv != heads) {
    // kv head j serves q heads j*g .. j*g+g-1 (HF's repeat_kv).
    const int64_t g = heads / kv;
    k = k.unsqueeze(2)
            .expand({batch, kv, g, seq, hd})
            .reshape({batch, heads, seq, hd});
    v = v.unsqueeze(2)
            .expand({batch, kv, g, seq, hd})
            .reshape({batch, heads, seq, hd});
  }
  torch::Tensor att = at::scaled_dot_product_attention(
      q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/true);
  att = att.transpose(1, 2).reshape({batch, seq, heads * hd});
  const torch::Tensor y = x + torch::linear(att, w("attn.proj.weight"));

  const torch::Tensor n = RmsNorm(y, w("ln2.weight"), m.norm_eps);
  const torch::Tensor gate_up = torch::linear(n, w("mlp.gate_up.weight"));
  const int64_t inner = m.intermediate;
  const torch::Tensor hidden = torch::silu(gate_up.narrow(-1, 0, inner)) *
                               gate_up.narrow(-1, inner, inner);
  return y + torch::linear(hidden, w("mlp.down.weight"));
}

torch::Tensor HeadLoss(const torch::Tensor& final_norm,
                       const BufferLayout& final_layout,
                       const torch::Tensor& embedding,
                       const BufferLayout& embedding_layout,
                       const torch::Tensor& x, const torch::Tensor& targets,
                       const ModelConfig& m) {
  const torch::Tensor y = RmsNorm(
      x, gpt::View(final_norm, final_layout.tensor("norm.weight")), m.norm_eps);
  const torch::Tensor head =
      m.untied_head()
          ? gpt::View(final_norm, final_layout.tensor("lm_head.weight"))
          : gpt::View(embedding, embedding_layout.tensor("wte.weight"));
  // Only the model's vocabulary: the padding rows get no logits.
  const torch::Tensor logits =
      torch::matmul(y, head.narrow(0, 0, m.vocab).t());  // [B, S, vocab]
  // In fp32 (float64 stays so, for the gradient checks).
  return torch::cross_entropy_loss(
      logits.reshape({-1, logits.size(-1)})
          .to(torch::promote_types(logits.scalar_type(), torch::kFloat32)),
      targets.reshape({-1}));
}

}  // namespace stronghold::core::llama
