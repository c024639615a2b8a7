#include "server/proto_convert.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

namespace {

core::Precision ToPrecision(v1::Precision p) {
  switch (p) {
    case v1::BF16:
      return core::Precision::kBf16;
    case v1::FP16:
      return core::Precision::kFp16;
    default:
      return core::Precision::kFp32;
  }
}

v1::Precision FromPrecision(core::Precision p) {
  switch (p) {
    case core::Precision::kBf16:
      return v1::BF16;
    case core::Precision::kFp16:
      return v1::FP16;
    default:
      return v1::FP32;
  }
}

core::OffloadMethod ToMethod(v1::OffloadMethod m) {
  switch (m) {
    case v1::L2L:
      return core::OffloadMethod::kL2L;
    case v1::STRONGHOLD:
      return core::OffloadMethod::kStronghold;
    default:
      return core::OffloadMethod::kResident;
  }
}

}  // namespace

core::JobConfig ToJobConfig(const v1::JobSpec& spec) {
  core::JobConfig c;  // defaults live in core/plan/job_config.h
  c.name = spec.name();
#define SH_TAKE(msg, field, out) \
  if ((msg).has_##field()) (out) = (msg).field()
  const v1::ModelSpec& m = spec.model();
  SH_TAKE(m, layers, c.model.layers);
  SH_TAKE(m, hidden, c.model.hidden);
  SH_TAKE(m, heads, c.model.heads);
  SH_TAKE(m, seq_len, c.model.seq_len);
  SH_TAKE(m, vocab, c.model.vocab);
  SH_TAKE(m, vocab_multiple, c.model.vocab_multiple);
  c.model.architecture = m.architecture() == v1::LLAMA
                             ? core::Architecture::kLlama
                             : core::Architecture::kGpt;
  SH_TAKE(m, kv_heads, c.model.kv_heads);
  SH_TAKE(m, intermediate, c.model.intermediate);
  SH_TAKE(m, rope_theta, c.model.rope_theta);
  SH_TAKE(m, norm_eps, c.model.norm_eps);
  SH_TAKE(m, tie_embeddings, c.model.tie_embeddings);
  if (c.model.llama()) {
    if (!m.has_kv_heads()) c.model.kv_heads = c.model.heads;
    if (!m.has_intermediate())
      c.model.intermediate = core::DefaultIntermediate(c.model.hidden);
  }

  const v1::TrainingSpec& t = spec.training();
  SH_TAKE(t, batch, c.training.batch);
  // micro_batch defaults to the whole batch (no accumulation).
  c.training.micro_batch =
      t.has_micro_batch() ? t.micro_batch() : c.training.batch;
  SH_TAKE(t, steps, c.training.steps);
  SH_TAKE(t, lr, c.training.lr);
  SH_TAKE(t, warmup_steps, c.training.warmup_steps);
  SH_TAKE(t, min_lr, c.training.min_lr);
  SH_TAKE(t, weight_decay, c.training.weight_decay);
  SH_TAKE(t, beta1, c.training.beta1);
  SH_TAKE(t, beta2, c.training.beta2);
  SH_TAKE(t, eps, c.training.eps);
  SH_TAKE(t, clip_norm, c.training.clip_norm);
  SH_TAKE(t, seed, c.training.seed);
  SH_TAKE(t, log_every, c.training.log_every);
#undef SH_TAKE
  c.training.precision = ToPrecision(t.precision());

  const v1::OffloadSpec& o = spec.offload();
  c.offload.method = ToMethod(o.method());
  c.offload.window = o.window();
  c.offload.kept_activation_layers = o.kept_activation_layers();
  c.offload.speculative_updates = o.speculative_updates();
  c.offload.device_embedding_optimizer = o.device_embedding_optimizer();
  c.offload.device_resident_layers = o.device_resident_layers();
  // Unset: the planner's to choose (core/plan/auto_config.h).
  c.offload.automatic = {
      .speculative_updates = !o.has_speculative_updates(),
      .device_embedding_optimizer = !o.has_device_embedding_optimizer(),
      .device_resident_layers = !o.has_device_resident_layers()};
  c.offload.gpu_memory_budget_bytes = o.gpu_memory_budget_bytes();
  c.offload.host_memory_budget_bytes = o.host_memory_budget_bytes();
  c.offload.ssd_dirs.assign(o.ssd_dirs().begin(), o.ssd_dirs().end());

  if (!spec.data().source().empty()) c.data.source = spec.data().source();
  c.data.token_bytes = spec.data().token_bytes();
  c.checkpoint.every_steps = spec.checkpoint().every_steps();
  c.checkpoint.keep_last = spec.checkpoint().keep_last();

  if (spec.has_distributed()) {
    const v1::DistributedSpec& d = spec.distributed();
    c.distributed.master_addr = d.master_addr();
    c.distributed.master_port = d.master_port();
    if (d.world_size() != 0) c.distributed.world_size = d.world_size();
    c.distributed.rank = d.rank();
    c.distributed.local_rank = d.local_rank();
    c.distributed.job_key = d.job_key();
    c.distributed.collective_timeout_s = d.collective_timeout_s() != 0
                                             ? d.collective_timeout_s()
                                             : core::kDefaultCollectiveTimeoutS;
  }
  return c;
}

v1::JobSpec ToJobSpec(const core::JobConfig& c) {
  v1::JobSpec spec;
  spec.set_name(c.name);
  v1::ModelSpec* m = spec.mutable_model();
  m->set_layers(c.model.layers);
  m->set_hidden(c.model.hidden);
  m->set_heads(c.model.heads);
  m->set_seq_len(c.model.seq_len);
  m->set_vocab(c.model.vocab);
  m->set_vocab_multiple(c.model.vocab_multiple);
  m->set_architecture(c.model.llama() ? v1::LLAMA : v1::GPT);
  // A GPT's spec shows the llama fields only where they were given (and
  // validation refuses them).
  const core::ModelConfig defaults;
  const bool all = c.model.llama();
  if (all || c.model.kv_heads != defaults.kv_heads)
    m->set_kv_heads(c.model.kv_heads);
  if (all || c.model.intermediate != defaults.intermediate)
    m->set_intermediate(c.model.intermediate);
  if (all || c.model.rope_theta != defaults.rope_theta)
    m->set_rope_theta(c.model.rope_theta);
  if (all || c.model.norm_eps != defaults.norm_eps)
    m->set_norm_eps(c.model.norm_eps);
  if (all || c.model.tie_embeddings != defaults.tie_embeddings)
    m->set_tie_embeddings(c.model.tie_embeddings);
  v1::TrainingSpec* t = spec.mutable_training();
  t->set_batch(c.training.batch);
  t->set_micro_batch(c.training.micro_batch);
  t->set_steps(c.training.steps);
  t->set_lr(c.training.lr);
  t->set_warmup_steps(c.training.warmup_steps);
  t->set_min_lr(c.training.min_lr);
  t->set_weight_decay(c.training.weight_decay);
  t->set_beta1(c.training.beta1);
  t->set_beta2(c.training.beta2);
  t->set_eps(c.training.eps);
  t->set_clip_norm(c.training.clip_norm);
  t->set_seed(c.training.seed);
  t->set_precision(FromPrecision(c.training.precision));
  t->set_log_every(c.training.log_every);
  v1::OffloadSpec* o = spec.mutable_offload();
  o->set_method(ToProto(c.offload.method));
  o->set_window(c.offload.window);
  o->set_kept_activation_layers(c.offload.kept_activation_layers);
  // What is still automatic stays unset.
  const core::OffloadConfig::Automatic& automatic = c.offload.automatic;
  if (!automatic.speculative_updates)
    o->set_speculative_updates(c.offload.speculative_updates);
  if (!automatic.device_embedding_optimizer)
    o->set_device_embedding_optimizer(c.offload.device_embedding_optimizer);
  if (!automatic.device_resident_layers)
    o->set_device_resident_layers(c.offload.device_resident_layers);
  o->set_gpu_memory_budget_bytes(c.offload.gpu_memory_budget_bytes);
  o->set_host_memory_budget_bytes(c.offload.host_memory_budget_bytes);
  for (const std::string& d : c.offload.ssd_dirs) o->add_ssd_dirs(d);
  spec.mutable_data()->set_source(c.data.source);
  spec.mutable_data()->set_token_bytes(c.data.token_bytes);
  spec.mutable_checkpoint()->set_every_steps(c.checkpoint.every_steps);
  spec.mutable_checkpoint()->set_keep_last(c.checkpoint.keep_last);
  // A single-rank job's spec is exactly what it was before ranks existed.
  if (c.distributed.enabled()) {
    v1::DistributedSpec* d = spec.mutable_distributed();
    d->set_master_addr(c.distributed.master_addr);
    d->set_master_port(c.distributed.master_port);
    d->set_world_size(c.distributed.world_size);
    d->set_rank(c.distributed.rank);
    d->set_local_rank(c.distributed.local_rank);
    d->set_job_key(c.distributed.job_key);
    d->set_collective_timeout_s(c.distributed.collective_timeout_s);
  }
  return spec;
}

void RedactSecrets(v1::JobSpec* spec) {
  if (spec->has_distributed() && !spec->distributed().job_key().empty())
    spec->mutable_distributed()->set_job_key(core::kRedactedJobKey);
}

void RedactSecrets(v1::Job* job) { RedactSecrets(job->mutable_spec()); }

v1::MemoryPlan ToProto(const core::ExecutionPlan& p) {
  v1::MemoryPlan out;
  out.set_method(ToProto(p.method));
  out.set_reference(p.reference);
  out.set_automatic_window(p.automatic_window);
  out.set_slots(p.slots);
  out.set_host_checkpoints(p.host_checkpoints);
  out.set_kept_follows_window(p.kept_follows_window);
  out.set_device_resident_layers(p.device_resident_layers);
  out.set_device_embedding_optimizer(p.device_embedding_optimizer);
  out.set_speculative_updates(p.speculative_updates);
  out.set_parameters(p.parameters);
  out.set_parameters_per_layer(p.parameters_per_layer);
  out.set_device_bytes(p.bytes_device);
  out.set_pinned_bytes(p.bytes_pinned);
  out.set_host_bytes(p.bytes_host);
  out.set_ssd_bytes(p.bytes_ssd);
  out.set_device_budget_bytes(p.budget_device_bytes);
  out.set_host_budget_bytes(p.budget_host_bytes);
  out.set_fits(p.fits);
  out.set_reason(p.reason);
  out.set_window(p.window);
  out.set_kept_activation_layers(p.kept_activation_layers);
  out.set_ssd_layers(p.ssd_layers);
  out.set_ssd_weight_layers(p.ssd_weight_layers);
  out.set_ssd_grads_transient(p.ssd_grads_transient);
  out.set_device(p.device);
  out.set_model_flops_per_step(p.model_flops_per_step);
  out.set_world_size(p.world_size);
  out.set_rank_parameters(p.rank_parameters);
  out.set_rank_parameters_per_layer(p.rank_parameters_per_layer);
  out.set_d2h_bytes_per_step(p.d2h_bytes_per_step);
  for (const core::PlannedBuffer& b : p.buffers) {
    v1::PlannedBuffer* pb = out.add_buffers();
    pb->set_name(b.name);
    pb->set_tier(b.tier);
    pb->set_bytes(b.bytes);
    pb->set_shape(b.shape);
  }
  return out;
}

v1::StepMetrics ToStepMetrics(const core::StepMetrics& s,
                              double device_peak_flops) {
  v1::StepMetrics m;
  m.set_step(s.step);
  m.set_total_steps(s.steps);
  m.set_loss(s.loss);
  m.set_lr(s.lr);
  m.set_grad_norm(s.grad_norm);
  m.set_samples_per_s(s.samples_per_s);
  m.set_tokens_per_s(s.tokens_per_s);
  m.set_step_s(s.step_s);
  m.set_compute_s(s.compute_s);
  m.set_h2d_wait_s(s.h2d_wait_s);
  m.set_d2h_wait_s(s.d2h_wait_s);
  m.set_nvme_wait_s(s.nvme_wait_s);
  m.set_optimizer_s(s.optimizer_s);
  m.set_model_tflops(s.model_tflops);
  m.set_window(s.window);
  m.set_device_peak_bytes(s.device_peak_bytes);
  m.set_h2d_bytes(s.h2d_bytes);
  m.set_d2h_bytes(s.d2h_bytes);
  m.set_nvme_read_bytes(s.nvme_read_bytes);
  m.set_nvme_reused_bytes(s.nvme_reused_bytes);
  m.set_nvme_write_bytes(s.nvme_write_bytes);
  m.set_nvme_unplanned_reads(s.nvme_unplanned_reads);
  m.set_loss_scale(s.loss_scale);
  m.set_skipped(s.skipped);
  m.set_rolled_back(s.rolled_back);
  m.set_layer_forward_s(s.layer_forward_s);
  m.set_layer_backward_s(s.layer_backward_s);
  m.set_layer_optimizer_s(s.layer_optimizer_s);
  if (device_peak_flops > 0) {
    m.set_mfu(s.model_tflops * 1e12 / device_peak_flops);
  }
  return m;
}

v1::OffloadMethod ToProto(core::OffloadMethod m) {
  switch (m) {
    case core::OffloadMethod::kL2L:
      return v1::L2L;
    case core::OffloadMethod::kStronghold:
      return v1::STRONGHOLD;
    default:
      return v1::RESIDENT;
  }
}

}  // namespace stronghold::server
