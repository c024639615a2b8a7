// FusedAdamW against LibTorch's torch::optim::AdamW over 100 steps.
//
// torch applies weight decay to every parameter of a group, so the layer's
// decayed prefix and undecayed rest are two tensors in two param groups
// (weight_decay and 0). The learning rate changes every step (warm-up),
// as under the trainer's schedule. LibTorch's C++ AdamW updates m as
// m*b1 + (1-b1)*g where ours (like torch.optim.AdamW in Python) uses
// lerp, so bits differ; the weights must agree within 1e-6 relative.
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "core/optim/fused_adamw.h"
#include "core/optim/optimizer.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

TEST(TorchParityTest, HundredStepsWithinOneMillionthRelative) {
  constexpr int64_t kCount = 10007, kDecayCount = 6000;
  constexpr double kBeta1 = 0.9, kBeta2 = 0.95, kEps = 1e-8, kDecay = 0.1;
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> magnitude(0.5f, 2.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  std::vector<float> param(kCount), exp_avg(kCount, 0.0f),
      exp_avg_sq(kCount, 0.0f), grad(kCount);
  for (float& p : param) p = (rng() & 1) ? magnitude(rng) : -magnitude(rng);

  torch::NoGradGuard no_grad;
  torch::Tensor decayed = torch::from_blob(param.data(), {kDecayCount}).clone();
  torch::Tensor plain =
      torch::from_blob(param.data() + kDecayCount, {kCount - kDecayCount})
          .clone();
  decayed.set_requires_grad(true);
  plain.set_requires_grad(true);
  auto options = [&](double weight_decay) {
    return std::make_unique<torch::optim::AdamWOptions>(
        torch::optim::AdamWOptions(1e-3)
            .betas({kBeta1, kBeta2})
            .eps(kEps)
            .weight_decay(weight_decay));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{decayed}, options(kDecay));
  groups.emplace_back(std::vector<torch::Tensor>{plain}, options(0.0));
  torch::optim::AdamW torch_adamw(groups, torch::optim::AdamWOptions(1e-3));

  auto fused = FusedAdamW::Create({.threads = 2, .chunk_elements = 512});
  ASSERT_TRUE(fused.ok()) << fused.status();
  const ParamBuffer buffer{param.data(), exp_avg.data(), exp_avg_sq.data(),
                           grad.data(),  kCount,         kDecayCount};

  for (int64_t step = 1; step <= 100; ++step) {
    const float lr = 1e-3f * std::min(1.0f, step / 10.0f);
    for (float& g : grad) g = normal(rng);
    decayed.mutable_grad() =
        torch::from_blob(grad.data(), {kDecayCount}).clone();
    plain.mutable_grad() =
        torch::from_blob(grad.data() + kDecayCount, {kCount - kDecayCount})
            .clone();
    for (auto& group : torch_adamw.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    torch_adamw.step();
    (*fused)->Step(buffer, {.lr = lr,
                            .beta1 = static_cast<float>(kBeta1),
                            .beta2 = static_cast<float>(kBeta2),
                            .eps = static_cast<float>(kEps),
                            .weight_decay = static_cast<float>(kDecay),
                            .step = step});
  }

  const float* theirs_decayed = decayed.data_ptr<float>();
  const float* theirs_plain = plain.data_ptr<float>();
  double worst = 0.0;
  for (int64_t i = 0; i < kCount; ++i) {
    const double theirs =
        i < kDecayCount ? theirs_decayed[i] : theirs_plain[i - kDecayCount];
    const double relative = std::abs(param[i] - theirs) / std::abs(theirs);
    worst = std::max(worst, relative);
    ASSERT_LE(relative, 1e-6)
        << "element " << i << ": ours " << param[i] << " torch " << theirs;
  }
  // The weights moved (so agreement is not trivial): about 100 steps of
  // up to lr each.
  double moved = 0.0;
  std::mt19937 rng_again(42);
  for (int64_t i = 0; i < kCount; ++i) {
    const float initial =
        (rng_again() & 1) ? magnitude(rng_again) : -magnitude(rng_again);
    moved = std::max(moved, std::abs(double{param[i]} - initial));
  }
  EXPECT_GT(moved, 0.02);
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", worst);
  RecordProperty("worst_relative_difference", text);
}

}  // namespace
}  // namespace stronghold::core
