// The llama architecture's layout and math against an independent reference
// written here in plain LibTorch ops and float64 (as Hugging Face's
// LlamaForCausalLM computes): RMSNorm, RoPE in the rotate_half convention
// (dimension d pairs with d + hd/2), grouped-query attention (kv head j
// serves q heads j*g .. j*g+g-1), SwiGLU, the tied or untied head over the
// model's vocabulary; and gradients against central differences.
#include "core/model/llama.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/model/gpt.h"
#include "core/model/gpt_init.h"
#include "core/model/gpt_layout.h"
#include "core/model/network.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

ModelConfig Tiny(bool tied) {
  ModelConfig m;
  m.architecture = Architecture::kLlama;
  m.layers = 2;
  m.hidden = 32;
  m.heads = 4;
  m.kv_heads = 2;
  m.intermediate = 48;
  m.seq_len = 8;
  m.vocab = 50;          // padded to 128: the head must leave rows 50.. out
  m.rope_theta = 500.0;  // small, so that positions 0..7 turn far
  m.norm_eps = 1e-5;
  m.tie_embeddings = tied;
  return m;
}

// The model's buffers, initialised as a job's are, then perturbed so that
// norm gains are not all 1.
std::vector<torch::Tensor> Buffers(const ModelConfig& m,
                                   std::vector<BufferLayout>* layouts) {
  *layouts = ModelLayout(m);
  std::vector<torch::Tensor> out;
  torch::manual_seed(7);
  for (size_t i = 0; i < layouts->size(); ++i) {
    torch::Tensor b = torch::empty({(*layouts)[i].count}, torch::kFloat32);
    InitBuffer((*layouts)[i], m, /*seed=*/5, static_cast<int>(i),
               b.data_ptr<float>());
    b += 0.05 * torch::randn_like(b);
    out.push_back(b);
  }
  return out;
}

TEST(LlamaLayoutTest, BuffersAndCountsAreTheContract) {
  for (bool tied : {false, true}) {
    const ModelConfig m = Tiny(tied);
    const std::vector<BufferLayout> l = ModelLayout(m);
    ASSERT_EQ(l.size(), 4u);
    // By hand: hd 8, q 32, k = v 16, I 48, V 128.
    EXPECT_EQ(l[0].name, "embedding");
    ASSERT_EQ(l[0].tensors.size(), 1u);
    EXPECT_EQ(l[0].tensors[0].name, "wte.weight");
    EXPECT_EQ(l[0].tensors[0].shape, (std::vector<int64_t>{128, 32}));
    EXPECT_EQ(l[0].decay_count, 4096);
    const BufferLayout& b = l[1];
    EXPECT_EQ(b.name, "layers.0");
    const std::vector<std::pair<std::string, std::vector<int64_t>>> want = {
        {"attn.qkv.weight", {64, 32}},
        {"attn.proj.weight", {32, 32}},
        {"mlp.gate_up.weight", {96, 32}},
        {"mlp.down.weight", {32, 48}},
        {"ln1.weight", {32}},
        {"ln2.weight", {32}}};
    ASSERT_EQ(b.tensors.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(b.tensors[i].name, want[i].first);
      EXPECT_EQ(b.tensors[i].shape, want[i].second) << want[i].first;
    }
    EXPECT_EQ(b.decay_count, 2048 + 1024 + 3072 + 1536);
    EXPECT_EQ(b.count, 7744);
    EXPECT_EQ(m.parameters_per_layer(), 7744);
    const BufferLayout& f = l[3];
    EXPECT_EQ(f.name, "final_norm");
    if (tied) {
      ASSERT_EQ(f.tensors.size(), 1u);
      EXPECT_EQ(f.tensors[0].name, "norm.weight");
      EXPECT_EQ(f.decay_count, 0);
      EXPECT_EQ(m.parameters(), 2 * 7744 + 4096 + 32);
    } else {
      ASSERT_EQ(f.tensors.size(), 2u);
      EXPECT_EQ(f.tensors[0].name, "lm_head.weight");
      EXPECT_EQ(f.tensors[0].shape, (std::vector<int64_t>{128, 32}));
      EXPECT_EQ(f.tensors[1].name, "norm.weight");
      EXPECT_EQ(f.decay_count, 4096);
      EXPECT_EQ(m.parameters(), 2 * 7744 + 4096 + 4096 + 32);
    }
    int64_t sum = 0;
    for (const BufferLayout& x : l) sum += x.count;
    EXPECT_EQ(sum, m.parameters());
  }
}

TEST(LlamaLayoutTest, InitialisesGainsToOneAndNoBiases) {
  const ModelConfig m = Tiny(false);
  const std::vector<BufferLayout> l = ModelLayout(m);
  std::vector<float> block(l[1].count);
  InitBuffer(l[1], m, 5, 1, block.data());
  for (const char* gain : {"ln1.weight", "ln2.weight"}) {
    const TensorSlice& t = l[1].tensor(gain);
    for (int64_t i = 0; i < t.numel(); ++i)
      ASSERT_EQ(block[t.offset + i], 1.0f) << gain;
  }
  const TensorSlice& qkv = l[1].tensor("attn.qkv.weight");
  double sq = 0;
  for (int64_t i = 0; i < qkv.numel(); ++i)
    sq += block[qkv.offset + i] * block[qkv.offset + i];
  EXPECT_NEAR(std::sqrt(sq / qkv.numel()), 0.02, 0.004);
}

// ---------------------------------------------------------- the reference

torch::Tensor D(const torch::Tensor& t) { return t.to(torch::kFloat64); }

torch::Tensor RefRms(const torch::Tensor& x, const torch::Tensor& w,
                     double eps) {
  return x / torch::sqrt((x * x).mean(-1, true) + eps) * w;
}

// x [B, n, S, hd]: each dimension d < hd/2 turns with d + hd/2 by
// s * theta^(-2d/hd).
torch::Tensor RefRope(const torch::Tensor& x, double theta) {
  const int64_t seq = x.size(2), hd = x.size(3), half = hd / 2;
  torch::Tensor angle = torch::empty({seq, half}, torch::kFloat64);
  for (int64_t s = 0; s < seq; ++s)
    for (int64_t d = 0; d < half; ++d)
      angle[s][d] = s * std::pow(theta, -2.0 * d / hd);
  const torch::Tensor c = angle.cos(), sn = angle.sin();
  const torch::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return torch::cat({x1 * c - x2 * sn, x2 * c + x1 * sn}, -1);
}

torch::Tensor RefBlock(const torch::Tensor& x, const torch::Tensor& block,
                       const BufferLayout& l, const ModelConfig& m) {
  auto w = [&](const char* n) { return D(gpt::View(block, l.tensor(n))); };
  const int64_t B = x.size(0), S = x.size(1), hd = m.head_dim();
  const int64_t H = m.heads, KV = m.kv_heads, I = m.intermediate;
  const torch::Tensor qkv_w = w("attn.qkv.weight");
  const torch::Tensor a = RefRms(x, w("ln1.weight"), m.norm_eps);
  auto project = [&](int64_t row, int64_t n) {  // [B, n, S, hd]
    return torch::matmul(a, qkv_w.narrow(0, row, n * hd).t())
        .view({B, S, n, hd})
        .permute({0, 2, 1, 3});
  };
  const torch::Tensor q = RefRope(project(0, H), m.rope_theta);
  const torch::Tensor k = RefRope(project(H * hd, KV), m.rope_theta);
  const torch::Tensor v = project((H + KV) * hd, KV);
  const torch::Tensor mask =
      torch::ones({S, S}, torch::kBool).triu(/*diagonal=*/1);
  std::vector<torch::Tensor> heads;
  const int64_t g = H / KV;
  for (int64_t j = 0; j < H; ++j) {
    const torch::Tensor kj = k.select(1, j / g), vj = v.select(1, j / g);
    torch::Tensor scores =
        torch::matmul(q.select(1, j), kj.transpose(-1, -2)) / std::sqrt(hd);
    scores = scores.masked_fill(mask, -INFINITY);
    heads.push_back(torch::matmul(scores.softmax(-1), vj));  // [B, S, hd]
  }
  const torch::Tensor att = torch::cat(heads, -1);  // [B, S, H*hd]
  const torch::Tensor y = x + torch::matmul(att, w("attn.proj.weight").t());
  const torch::Tensor n = RefRms(y, w("ln2.weight"), m.norm_eps);
  const torch::Tensor gu = w("mlp.gate_up.weight");
  const torch::Tensor gate = torch::matmul(n, gu.narrow(0, 0, I).t());
  const torch::Tensor up = torch::matmul(n, gu.narrow(0, I, I).t());
  return y + torch::matmul(gate * torch::sigmoid(gate) * up,
                           w("mlp.down.weight").t());
}

torch::Tensor RefLoss(const std::vector<torch::Tensor>& bufs,
                      const std::vector<BufferLayout>& l, const ModelConfig& m,
                      const torch::Tensor& tokens,
                      const torch::Tensor& targets) {
  const torch::Tensor wte = D(gpt::View(bufs[0], l[0].tensor("wte.weight")));
  torch::Tensor x = wte.index_select(0, tokens.reshape({-1}))
                        .view({tokens.size(0), tokens.size(1), m.hidden});
  for (int i = 0; i < m.layers; ++i) x = RefBlock(x, bufs[i + 1], l[i + 1], m);
  const BufferLayout& fl = l.back();
  x = RefRms(x, D(gpt::View(bufs.back(), fl.tensor("norm.weight"))),
             m.norm_eps);
  const torch::Tensor head =
      m.tie_embeddings ? wte
                       : D(gpt::View(bufs.back(), fl.tensor("lm_head.weight")));
  const torch::Tensor logits =
      torch::matmul(x, head.narrow(0, 0, m.vocab).t()).view({-1, m.vocab});
  const torch::Tensor t = targets.reshape({-1});
  return (torch::logsumexp(logits, -1) -
          logits.gather(1, t.unsqueeze(1)).squeeze(1))
      .mean();
}

torch::Tensor Ours(const std::vector<torch::Tensor>& bufs,
                   const std::vector<BufferLayout>& l, const ModelConfig& m,
                   const torch::Tensor& tokens, const torch::Tensor& targets) {
  torch::Tensor x = net::Embed(bufs[0], l[0], tokens, m);
  for (int i = 0; i < m.layers; ++i)
    x = net::Block(bufs[i + 1], l[i + 1], x, m);
  return net::HeadLoss(bufs.back(), l.back(), bufs[0], l[0], x, targets, m);
}

std::pair<torch::Tensor, torch::Tensor> Tokens(const ModelConfig& m) {
  torch::manual_seed(11);
  const torch::Tensor all =
      torch::randint(0, m.vocab, {2, m.seq_len + 1}, torch::kInt64);
  return {all.narrow(1, 0, m.seq_len).contiguous(),
          all.narrow(1, 1, m.seq_len).contiguous()};
}

TEST(LlamaMathTest, RotaryPairsTheHalvesOfAHead) {
  // hd 4, theta 100: d 0 turns by s, d 1 by s/10; d 0 pairs with d 2.
  torch::Tensor x = torch::zeros({1, 1, 3, 4});
  x.select(2, 2).select(-1, 0).fill_(1.0);  // position 2, dimension 0
  x.select(2, 2).select(-1, 1).fill_(1.0);  // position 2, dimension 1
  const auto [cos, sin] = llama::RotaryTables(3, 4, 100.0, x);
  const torch::Tensor r = llama::ApplyRotary(x, cos, sin).select(2, 2)[0][0];
  EXPECT_NEAR(r[0].item<double>(), std::cos(2.0), 1e-6);
  EXPECT_NEAR(r[2].item<double>(), std::sin(2.0), 1e-6);
  EXPECT_NEAR(r[1].item<double>(), std::cos(0.2), 1e-6);
  EXPECT_NEAR(r[3].item<double>(), std::sin(0.2), 1e-6);
}

TEST(LlamaMathTest, RmsNormIsComputedInFp32AndScaledByTheGain) {
  const torch::Tensor x = torch::tensor({3.0f, -4.0f}).to(torch::kBFloat16);
  const torch::Tensor w = torch::tensor({2.0f, 0.5f}).to(torch::kBFloat16);
  const torch::Tensor y = llama::RmsNorm(x, w, 0.0).to(torch::kFloat64);
  // rms = sqrt(12.5): 3/3.5355 = 0.8485 (bf16 0.8477), -1.1314 (-1.1328).
  EXPECT_NEAR(y[0].item<double>(), 2 * 0.8485, 0.01);
  EXPECT_NEAR(y[1].item<double>(), 0.5 * -1.1314, 0.005);
}

TEST(LlamaMathTest, ForwardAndGradientsMatchTheReference) {
  for (bool tied : {false, true}) {
    const ModelConfig m = Tiny(tied);
    std::vector<BufferLayout> l;
    std::vector<torch::Tensor> bufs = Buffers(m, &l);
    const auto [tokens, targets] = Tokens(m);
    std::vector<torch::Tensor> ours, ref;
    for (const torch::Tensor& b : bufs) {
      ours.push_back(b.clone().requires_grad_(true));
      ref.push_back(b.clone().requires_grad_(true));
    }
    const torch::Tensor loss = Ours(ours, l, m, tokens, targets);
    const torch::Tensor expected = RefLoss(ref, l, m, tokens, targets);
    const std::string what = tied ? "tied" : "untied";
    EXPECT_EQ(loss.dtype(), torch::kFloat32);
    EXPECT_NEAR(loss.item<double>(), expected.item<double>(),
                1e-5 * expected.item<double>())
        << what;
    loss.backward();
    expected.backward();
    for (size_t i = 0; i < bufs.size(); ++i) {
      const torch::Tensor g = ours[i].grad().to(torch::kFloat64);
      const torch::Tensor want = ref[i].grad();
      const double scale = want.abs().max().item<double>();
      ASSERT_GT(scale, 0) << what << " buffer " << l[i].name;
      EXPECT_LT((g - want).abs().max().item<double>(), 1e-4 * scale)
          << what << " gradient of " << l[i].name;
    }
    if (!tied) {
      // The head's padding rows get no logits, hence no gradient.
      const TensorSlice& head = l.back().tensor("lm_head.weight");
      const torch::Tensor pad =
          gpt::View(ours.back().grad(), head).narrow(0, m.vocab, 128 - m.vocab);
      EXPECT_EQ(pad.abs().max().item<float>(), 0.0f);
    }
  }
}

// Our own functions in float64 against central differences, element by
// element, for a few elements of each tensor of every buffer.
TEST(LlamaMathTest, GradientsMatchCentralDifferences) {
  const ModelConfig m = Tiny(/*tied=*/false);
  std::vector<BufferLayout> l;
  std::vector<torch::Tensor> bufs = Buffers(m, &l);
  const auto [tokens, targets] = Tokens(m);
  std::vector<torch::Tensor> p;
  for (const torch::Tensor& b : bufs) p.push_back(D(b).requires_grad_(true));
  Ours(p, l, m, tokens, targets).backward();
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (size_t i = 0; i < p.size(); ++i) {
    for (const TensorSlice& t : l[i].tensors) {
      for (int64_t k : {int64_t{0}, t.numel() / 3, t.numel() - 1}) {
        const int64_t at = t.offset + k;
        if (t.name == "lm_head.weight" || t.name == "wte.weight") {
          if (k >= m.vocab * m.hidden) continue;  // padding: covered above
        }
        const double saved = p[i][at].item<double>();
        p[i][at] = saved + h;
        const double up = Ours(p, l, m, tokens, targets).item<double>();
        p[i][at] = saved - h;
        const double down = Ours(p, l, m, tokens, targets).item<double>();
        p[i][at] = saved;
        const double numeric = (up - down) / (2 * h);
        const double analytic = p[i].grad()[at].item<double>();
        EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-4 * std::abs(numeric))
            << l[i].name << "." << t.name << "[" << k << "]";
      }
    }
  }
}

// Multi-query attention (one kv head) and kv_heads == heads (plain
// multi-head) take the same path as GQA.
TEST(LlamaMathTest, OneAndAllKeyValueHeadsMatchTheReference) {
  for (int kv : {1, 4}) {
    ModelConfig m = Tiny(false);
    m.kv_heads = kv;
    std::vector<BufferLayout> l;
    std::vector<torch::Tensor> bufs = Buffers(m, &l);
    const auto [tokens, targets] = Tokens(m);
    const double got = Ours(bufs, l, m, tokens, targets).item<double>();
    const double want = RefLoss(bufs, l, m, tokens, targets).item<double>();
    EXPECT_NEAR(got, want, 1e-5 * want) << "kv_heads " << kv;
  }
}

}  // namespace
}  // namespace stronghold::core
