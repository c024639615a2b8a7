#include <vector>

#include "core/optim/optimizer.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

TEST(ReferenceAdamWTest, DecaysOnlyThePrefix) {
  std::vector<float> p = {1.0f, 1.0f}, m(2), v(2), g = {0.0f, 0.0f};
  ReferenceAdamW opt;
  opt.Step(
      {p.data(), m.data(), v.data(), g.data(), /*count=*/2, /*decay_count=*/1},
      {.lr = 0.1f, .weight_decay = 0.5f});
  EXPECT_FLOAT_EQ(p[0], 0.95f);
  EXPECT_FLOAT_EQ(p[1], 1.0f);
}

}  // namespace
}  // namespace stronghold::core
