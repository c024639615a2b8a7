#include "core/engine/host_buffer.h"

#include <algorithm>
#include <cstdint>

namespace stronghold::core {

DType ToDType(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return DType::kBFloat16;
    case Precision::kFp16:
      return DType::kFloat16;
    default:
      return DType::kFloat32;
  }
}

ParamBuffer ToParamBuffer(const HostBuffer& b, Precision precision) {
  ParamBuffer p;
  p.param = b.param;
  p.exp_avg = b.exp_avg;
  p.exp_avg_sq = b.exp_avg_sq;
  p.grad = b.grad;
  p.count = b.count();
  p.decay_count =
      std::clamp(b.layout.decay_count - b.begin(), int64_t{0}, p.count);
  p.chunk_elements = b.shard.chunk;
  p.chunk_stats = b.chunk_stats;
  if (b.working != nullptr) {
    p.working = b.working;
    p.working_dtype = ToDType(precision);
  }
  return p;
}

}  // namespace stronghold::core
