#include "core/model/gpt_init.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/util/mix64.h"

namespace stronghold::core {

namespace {

// Standard normal numbers from a counter-based stream (Box-Muller over
// splitmix64), reproducible element by element.
class NormalStream {
 public:
  explicit NormalStream(uint64_t key) : key_(key) {}
  float Next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 =
        (static_cast<double>(Mix64(key_ ^ counter_++) >> 11) + 1.0) * 0x1.0p-53;
    const double u2 =
        static_cast<double>(Mix64(key_ ^ counter_++) >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    spare_ = static_cast<float>(r * std::sin(2.0 * M_PI * u2));
    has_spare_ = true;
    return static_cast<float>(r * std::cos(2.0 * M_PI * u2));
  }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
  float spare_ = 0.0f;
  bool has_spare_ = false;
};

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

void InitBuffer(const BufferLayout& layout, const ModelConfig& model,
                uint64_t seed, int index, float* data) {
  const float residual_std = 0.02f / std::sqrt(2.0f * model.layers);
  for (size_t t = 0; t < layout.tensors.size(); ++t) {
    const TensorSlice& slice = layout.tensors[t];
    float* out = data + slice.offset;
    const int64_t n = slice.numel();
    const bool gain = EndsWith(slice.name, "ln1.weight") ||
                      EndsWith(slice.name, "ln2.weight") ||
                      EndsWith(slice.name, "lnf.weight") ||
                      slice.name == "norm.weight";
    if (EndsWith(slice.name, ".bias")) {
      for (int64_t i = 0; i < n; ++i) out[i] = 0.0f;
    } else if (gain) {
      for (int64_t i = 0; i < n; ++i) out[i] = 1.0f;
    } else {
      const float std =
          (slice.name == "attn.proj.weight" || slice.name == "mlp.fc2.weight" ||
           slice.name == "mlp.down.weight")
              ? residual_std
              : 0.02f;
      NormalStream normal(Mix64(seed) ^
                          Mix64((static_cast<uint64_t>(index) << 16) | t));
      for (int64_t i = 0; i < n; ++i) out[i] = std * normal.Next();
    }
  }
}

void InitBufferRange(const BufferLayout& layout, const ModelConfig& model,
                     uint64_t seed, int index, int64_t begin, int64_t end,
                     float* data) {
  if (begin == 0 && end == layout.count) {
    InitBuffer(layout, model, seed, index, data);
    return;
  }
  std::vector<float> whole(layout.count);
  InitBuffer(layout, model, seed, index, whole.data());
  std::copy(whole.begin() + begin, whole.begin() + end, data);
}

}  // namespace stronghold::core
