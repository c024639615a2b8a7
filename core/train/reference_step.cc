#include "core/train/reference_step.h"

#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/device/timeline.h"
#include "core/engine/host_buffer.h"
#include "core/engine/step_policy.h"
#include "core/model/gpt_layout.h"
#include "core/model/network.h"
#include "core/util/exception_status.h"
#include "core/util/status_macros.h"

namespace stronghold::core {
namespace {

double Since(int64_t start_ns) { return (Timeline::NowNs() - start_ns) / 1e9; }

}  // namespace

absl::Status ReferenceStep(const JobConfig& config, int64_t step,
                           const BatchSource& batches, HostState* host,
                           FusedAdamW* optimizer, LossScaleState* loss_scale,
                           StepMetrics* metrics) {
  const TrainingConfig& t = config.training;
  const std::vector<HostBuffer>& buffers = host->buffers();
  const int last = static_cast<int>(buffers.size()) - 1;  // the final norm
  torch::Tensor inputs =
      torch::empty({t.micro_batch, config.model.seq_len}, torch::kInt64);
  torch::Tensor targets =
      torch::empty({t.micro_batch, config.model.seq_len}, torch::kInt64);
  const int64_t start = Timeline::NowNs();
  host->ZeroGradients();
  const int micro_batches = t.batch / t.micro_batch;
  double loss_sum = 0.0;
  for (int j = 0; j < micro_batches; ++j) {
    RETURN_IF_ERROR(
        batches(j, inputs.data_ptr<int64_t>(), targets.data_ptr<int64_t>()));
    try {
      const torch::Tensor& emb = host->master(0);
      torch::Tensor x =
          net::Embed(emb, buffers.front().layout, inputs, config.model);
      for (int i = 1; i < last; ++i) {
        x = net::Block(host->master(i), buffers[i].layout, x, config.model);
      }
      torch::Tensor loss =
          net::HeadLoss(host->master(last), buffers.back().layout, emb,
                        buffers.front().layout, x, targets, config.model);
      loss_sum += loss.item<double>();
      (loss / micro_batches).backward();
    } catch (...) {
      return StatusFromException(absl::StrCat("step ", step));
    }
  }
  metrics->compute_s = Since(start);

  const int64_t opt_start = Timeline::NowNs();
  double sum_sq = 0.0;  // buffer order, as the engine sums it
  std::vector<StepStats> grads;
  for (const HostBuffer& b : buffers) {
    ASSIGN_OR_RETURN(StepFuture f, optimizer->SubmitMeasure(
                                       ToParamBuffer(b, t.precision), 1.0f));
    grads.push_back(f.Wait());
    sum_sq += grads.back().grad_sq_sum;
  }
  const double norm = std::sqrt(sum_sq);
  // The engine's step policy (core/engine/step_policy.h); the reference's
  // loss is not scaled and its updates wait for the norm.
  const StepDecision decision = DecideStep(t, t.precision,
                                           /*speculative=*/false, norm,
                                           /*loss_scale=*/1.0);
  if (!decision.finite) {
    return NonFiniteGradient(step, ModelLayout(config.model), grads);
  }
  const AdamWStep hyper =
      AdamWHyper(t, step, loss_scale->optimizer_step + 1, decision.grad_scale);
  for (const HostBuffer& b : buffers)
    optimizer->Step(ToParamBuffer(b, t.precision), hyper);
  AdvanceLossScale(t.precision, /*finite=*/true, loss_scale);
  metrics->optimizer_s = Since(opt_start);
  metrics->loss = loss_sum / micro_batches;
  metrics->grad_norm = norm;
  return absl::OkStatus();
}

}  // namespace stronghold::core
