// Every sum the GPT's bf16/fp16 forward and backward make over many terms
// (GEMMs, the embedding's row gradients, LayerNorm's weight gradients,
// attention) runs in fp32 with the kernels of the CPU that runs the test
// (docs/engine.md, "Precision"): with N = 8192 terms each result is within
// one 16-bit ulp of the exact one, where summing in the 16-bit type stops
// far below it (LibTorch's own CPU kernels for the embedding's and
// LayerNorm's backward: 4096 in fp16, 512 in bf16, instead of 8320) and
// LayerNorm's per-thread partial sums depend on the core count. On an Intel CPU
// with AVX512-FP16 LibTorch's fp16 GEMMs are oneDNN's, elsewhere ATen's own:
// both are checked wherever this runs.
#include <cmath>
#include <string>

#include "core/model/gpt.h"
#include "gtest/gtest.h"

namespace stronghold::core::gpt {
namespace {

constexpr int64_t kTerms = 8192;

class SumsTest : public ::testing::TestWithParam<torch::ScalarType> {
 protected:
  torch::ScalarType type() const { return GetParam(); }
  torch::TensorOptions options() const {
    return torch::TensorOptions().dtype(type());
  }
  // 1.015625 = 1 + 2^-6 is exact in both types; N of them sum to 8320, which
  // both types hold exactly (8192 + 128).
  torch::Tensor Terms(std::vector<int64_t> shape) const {
    return torch::full(shape, 1.015625, options());
  }
  double exact() const { return kTerms * 1.015625; }
};

// |actual - exact| within one ulp (in the test's type) of the exact value.
void ExpectWithinOneUlp(const torch::Tensor& actual, const torch::Tensor& exact,
                        torch::ScalarType type, const std::string& what) {
  const int mantissa_bits = type == torch::kHalf ? 10 : 7;
  const torch::Tensor e = exact.to(torch::kDouble);
  const torch::Tensor ulp =
      torch::pow(2.0, torch::floor(torch::log2(e.abs())) - mantissa_bits);
  const torch::Tensor err = (actual.to(torch::kDouble) - e).abs() / ulp;
  const double worst = err.max().item<double>();
  const int64_t at = err.argmax().item<int64_t>();
  EXPECT_LE(worst, 1.0) << what << ": " << actual.flatten()[at].item<double>()
                        << " vs exact " << e.flatten()[at].item<double>()
                        << " (" << worst << " ulp)";
}

TEST_P(SumsTest, GemmsSumInFp32) {
  const torch::Tensor a = Terms({16, kTerms}), b = Terms({kTerms, 16});
  const torch::Tensor want =
      torch::full({16, 16}, exact() * 1.015625, torch::kDouble);
  ExpectWithinOneUlp(torch::mm(a, b), want, type(), "mm");
  ExpectWithinOneUlp(torch::matmul(a, b), want, type(), "matmul");
  ExpectWithinOneUlp(torch::linear(a, b.t().contiguous()), want, type(),
                     "linear");
  // Positive random terms: no cancellation, so every product of an fp32
  // sum rounds to the exact value or a neighbour.
  torch::manual_seed(0);
  const torch::Tensor x = torch::rand({16, kTerms}).to(type()),
                      y = torch::rand({kTerms, 16}).to(type());
  ExpectWithinOneUlp(torch::mm(x, y),
                     torch::mm(x.to(torch::kDouble), y.to(torch::kDouble)),
                     type(), "mm of random terms");

  // Backward: the weight and bias gradients sum over the rows.
  const torch::Tensor w = torch::ones({4, 8}, options()).requires_grad_(true);
  const torch::Tensor bias = torch::zeros({4}, options()).requires_grad_(true);
  torch::linear(torch::ones({kTerms, 8}, options()), w, bias)
      .backward(Terms({kTerms, 4}));
  ExpectWithinOneUlp(w.grad(), torch::full({4, 8}, exact(), torch::kDouble),
                     type(), "linear dW");
  ExpectWithinOneUlp(bias.grad(), torch::full({4}, exact(), torch::kDouble),
                     type(), "linear db");
}

// LibTorch's CPU embedding backward alone gives 4096 (fp16) and 512 (bf16).
TEST_P(SumsTest, LookupSumsEachRowsGradientInFp32) {
  const torch::Tensor table =
      torch::zeros({4, 8}, options()).requires_grad_(true);
  const torch::Tensor tokens =
      torch::zeros({2, kTerms / 2}, torch::kLong);  // row 0, N times
  const torch::Tensor out = Lookup(table, tokens);
  EXPECT_EQ(out.scalar_type(), type());
  out.backward(Terms({2, kTerms / 2, 8}));
  ExpectWithinOneUlp(table.grad()[0], torch::full({8}, exact(), torch::kDouble),
                     type(), "the gradient of a row looked up 8192 times");
  EXPECT_EQ(table.grad()[1].abs().sum().item<double>(), 0.0);
}

// LibTorch's CPU LayerNorm backward alone sums per intra-op thread in the
// 16-bit type: 4096, 8192 or 8200 by core count in fp16 (512..2048 in bf16).
TEST_P(SumsTest, LayerNormSumsItsWeightGradientsInFp32) {
  const torch::Tensor x =
      torch::tensor({1.0, -1.0}).repeat({kTerms, 1}).to(type());
  const torch::Tensor weight = torch::ones({2}, options()).requires_grad_(true);
  const torch::Tensor bias = torch::zeros({2}, options()).requires_grad_(true);
  const torch::Tensor y = LayerNorm(x, weight, bias);
  EXPECT_EQ(y.scalar_type(), type());
  y.backward(Terms({kTerms, 2}));

  const torch::Tensor xd = x.to(torch::kDouble);
  const torch::Tensor wd =
      torch::ones({2}, torch::kDouble).requires_grad_(true);
  const torch::Tensor bd =
      torch::zeros({2}, torch::kDouble).requires_grad_(true);
  torch::layer_norm(xd, {2}, wd, bd)
      .backward(Terms({kTerms, 2}).to(torch::kDouble));
  ExpectWithinOneUlp(bias.grad(), bd.grad(), type(), "LayerNorm d(bias)");
  ExpectWithinOneUlp(weight.grad(), wd.grad(), type(), "LayerNorm d(weight)");
}

// Causal=false attention of N queries over N equal keys: each output is the
// mean of N ones, and each value's gradient a sum of N weights 1/N.
TEST_P(SumsTest, AttentionSumsInFp32) {
  const torch::Tensor q =
      torch::zeros({1, 1, kTerms, 8}, options()).requires_grad_(true);
  const torch::Tensor k = torch::zeros({1, 1, kTerms, 8}, options());
  const torch::Tensor v =
      torch::ones({1, 1, kTerms, 8}, options()).requires_grad_(true);
  const torch::Tensor out = at::scaled_dot_product_attention(q, k, v);
  out.backward(torch::ones_like(out));
  const torch::Tensor ones = torch::ones({1, 1, kTerms, 8}, torch::kDouble);
  ExpectWithinOneUlp(out, ones, type(), "attention output");
  ExpectWithinOneUlp(v.grad(), ones, type(), "attention d(value)");
}

INSTANTIATE_TEST_SUITE_P(
    Types, SumsTest, ::testing::Values(torch::kHalf, torch::kBFloat16),
    [](const ::testing::TestParamInfo<torch::ScalarType>& info) {
      return std::string(info.param == torch::kHalf ? "fp16" : "bf16");
    });

}  // namespace
}  // namespace stronghold::core::gpt
