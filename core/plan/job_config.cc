#include "core/plan/job_config.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

const char* ArchitectureName(Architecture architecture) {
  return architecture == Architecture::kLlama ? "llama" : "gpt";
}

int DefaultIntermediate(int hidden) {
  const int64_t inner = 2 * (4 * static_cast<int64_t>(hidden)) / 3;
  return static_cast<int>((inner + 255) / 256 * 256);
}

int ModelConfig::key_value_heads() const {
  return llama() && kv_heads > 0 ? kv_heads : heads;
}

namespace {

// The buffer sizes in T: int64_t for the layout, double for
// CheckDerivedSizes, which must not overflow on fields beyond their limits.
template <typename T>
T LayerParameters(const ModelConfig& m) {
  const T h = m.hidden;
  if (!m.llama()) return 12 * h * h + 13 * h;
  const T hd = static_cast<T>(m.heads > 0 ? m.hidden / m.heads : 0);
  const T q = m.heads * hd, kv = m.key_value_heads() * hd;
  return h * (q + 2 * kv) + q * h + 3 * h * static_cast<T>(m.intermediate) +
         2 * h;
}

template <typename T>
T EmbeddingParameters(const ModelConfig& m) {
  const T positions = m.llama() ? 0 : m.seq_len;
  return (static_cast<T>(m.padded_vocab()) + positions) *
         static_cast<T>(m.hidden);
}

template <typename T>
T FinalParameters(const ModelConfig& m) {
  const T h = m.hidden;
  if (!m.llama()) return 2 * h;
  return (m.untied_head() ? static_cast<T>(m.padded_vocab()) * h : 0) + h;
}

template <typename T>
T Parameters(const ModelConfig& m) {
  return m.layers * LayerParameters<T>(m) + EmbeddingParameters<T>(m) +
         FinalParameters<T>(m);
}

template <typename T>
T LayerActivationElements(const ModelConfig& m) {
  const T h = m.hidden;
  // GPT: ln1 out, qkv (3), attention out, proj out, residual, ln2 out, fc1
  // out (4), gelu out (4), fc2 out: 17h, and as much again for gradients.
  if (!m.llama()) return 34 * h;
  const T hd = static_cast<T>(m.heads > 0 ? m.hidden / m.heads : 0);
  const T q = m.heads * hd, kv = m.key_value_heads() * hd;
  // ln1 out, qkv, rotated q and k, attention out, proj out, residual, ln2
  // out, gate_up (2I), silu(gate), the product, down out; and gradients.
  return 2 * (h + (q + 2 * kv) + (q + kv) + 4 * h +
              4 * static_cast<T>(m.intermediate) + h);
}

}  // namespace

int64_t ModelConfig::parameters_per_layer() const {
  return LayerParameters<int64_t>(*this);
}

int64_t ModelConfig::embedding_parameters() const {
  return EmbeddingParameters<int64_t>(*this);
}

int64_t ModelConfig::final_parameters() const {
  return FinalParameters<int64_t>(*this);
}

int64_t ModelConfig::parameters() const { return Parameters<int64_t>(*this); }

double ModelConfig::model_flops_per_step(int64_t batch) const {
  const double b = batch, s = seq_len, l = layers, h = hidden;
  const double v = static_cast<double>(padded_vocab());
  if (!llama())
    return 72.0 * b * s * l * h * h *
           (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
  const double q = static_cast<double>(heads * head_dim());
  const double kv = static_cast<double>(key_value_heads() * head_dim());
  const double matmul = h * (q + 2 * kv) + q * h + 3.0 * h * intermediate;
  // Per token: 2 FLOPs per matmul weight, 2*2*s*q for QK^T and AV; the head
  // 2*V*h; backward twice the forward.
  return 6.0 * b * s * (l * (matmul + 2.0 * s * q) + v * h);
}

int64_t ModelConfig::layer_activation_elements_per_token() const {
  return LayerActivationElements<int64_t>(*this);
}

double LearningRate(const TrainingConfig& t, int64_t step) {
  if (t.warmup_steps > 0 && step <= t.warmup_steps) {
    return t.lr * static_cast<double>(step) / t.warmup_steps;
  }
  const int64_t decay_steps = std::max<int64_t>(1, t.steps - t.warmup_steps);
  const double progress =
      std::min(1.0, static_cast<double>(step - t.warmup_steps) / decay_steps);
  return t.min_lr + 0.5 * (t.lr - t.min_lr) * (1.0 + std::cos(M_PI * progress));
}

namespace {

absl::Status Invalid(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

absl::Status CheckRange(absl::string_view field, int64_t value, int64_t lo,
                        int64_t hi) {
  if (value < lo || value > hi) {
    return Invalid(
        field, absl::StrCat("must be in [", lo, ", ", hi, "], got ", value));
  }
  return absl::OkStatus();
}

absl::Status CheckFinite(absl::string_view field, double value, double lo,
                         double hi, bool lo_open = false) {
  if (!std::isfinite(value) || value < lo || value > hi ||
      (lo_open && value == lo)) {
    return Invalid(field, absl::StrCat("must be in ", lo_open ? "(" : "[", lo,
                                       ", ", hi, "], got ", value));
  }
  return absl::OkStatus();
}

// A path's form: not empty, no NUL byte (the system would cut the path
// there), at most kMaxPathLength bytes.
absl::Status CheckPath(absl::string_view field, const std::string& path) {
  if (path.empty()) return Invalid(field, "must not be empty");
  if (path.find('\0') != std::string::npos)
    return Invalid(field, "must not contain a NUL byte");
  if (path.size() > kMaxPathLength) {
    return Invalid(field, absl::StrCat("at most ", kMaxPathLength,
                                       " bytes, got ", path.size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateLlama(const ModelConfig& m) {
  RETURN_IF_ERROR(CheckRange("model.kv_heads", m.kv_heads, 0, m.heads));
  if (m.kv_heads > 0 && m.heads % m.kv_heads != 0) {
    return Invalid("model.kv_heads",
                   absl::StrCat("must divide model.heads (", m.heads, "), got ",
                                m.kv_heads));
  }
  if (m.head_dim() % 2 != 0) {
    return Invalid("model.hidden",
                   absl::StrCat("model.hidden / model.heads (the head size) "
                                "must be even for rotary embeddings, got ",
                                m.head_dim()));
  }
  RETURN_IF_ERROR(
      CheckRange("model.intermediate", m.intermediate, 1, kMaxIntermediate));
  RETURN_IF_ERROR(CheckFinite("model.rope_theta", m.rope_theta, 0.0,
                              kMaxRopeTheta, /*lo_open=*/true));
  return CheckFinite("model.norm_eps", m.norm_eps, 0.0, kMaxNormEps,
                     /*lo_open=*/true);
}

// The llama-only fields of a GPT must be left at their defaults: a value
// there would be silently ignored.
absl::Status ValidateGptHasNoLlamaFields(const ModelConfig& m) {
  const ModelConfig defaults;
  if (m.kv_heads != 0 && m.kv_heads != m.heads)
    return Invalid("model.kv_heads", "applies to the llama architecture only");
  if (m.intermediate != 0)
    return Invalid("model.intermediate",
                   "applies to the llama architecture only");
  if (m.rope_theta != defaults.rope_theta)
    return Invalid("model.rope_theta",
                   "applies to the llama architecture only");
  if (m.norm_eps != defaults.norm_eps)
    return Invalid("model.norm_eps", "applies to the llama architecture only");
  if (m.tie_embeddings)
    return Invalid("model.tie_embeddings",
                   "applies to the llama architecture only (a GPT is always "
                   "tied)");
  return absl::OkStatus();
}

absl::Status ValidateModel(const ModelConfig& m) {
  RETURN_IF_ERROR(CheckRange("model.layers", m.layers, 1, kMaxLayers));
  RETURN_IF_ERROR(CheckRange("model.hidden", m.hidden, 1, kMaxHidden));
  RETURN_IF_ERROR(CheckRange("model.heads", m.heads, 1, m.hidden));
  if (m.hidden % m.heads != 0) {
    return Invalid("model.hidden",
                   absl::StrCat("must be divisible by model.heads (", m.heads,
                                "), got ", m.hidden));
  }
  RETURN_IF_ERROR(CheckRange("model.seq_len", m.seq_len, 1, kMaxSeqLen));
  RETURN_IF_ERROR(CheckRange("model.vocab", m.vocab, 2, kMaxVocab));
  RETURN_IF_ERROR(CheckRange("model.vocab_multiple", m.vocab_multiple, 1,
                             ModelConfig::kMaxVocabMultiple));
  return m.llama() ? ValidateLlama(m) : ValidateGptHasNoLlamaFields(m);
}

absl::Status ValidateTraining(const TrainingConfig& t) {
  RETURN_IF_ERROR(CheckRange("training.batch", t.batch, 1, 1 << 20));
  RETURN_IF_ERROR(
      CheckRange("training.micro_batch", t.micro_batch, 1, t.batch));
  if (t.batch % t.micro_batch != 0) {
    return Invalid("training.batch",
                   absl::StrCat("must be a multiple of training.micro_batch (",
                                t.micro_batch, "), got ", t.batch));
  }
  RETURN_IF_ERROR(CheckRange("training.steps", t.steps, 1, kMaxSteps));
  RETURN_IF_ERROR(
      CheckFinite("training.lr", t.lr, 0.0, 10.0, /*lo_open=*/true));
  RETURN_IF_ERROR(
      CheckRange("training.warmup_steps", t.warmup_steps, 0, t.steps));
  RETURN_IF_ERROR(CheckFinite("training.min_lr", t.min_lr, 0.0, t.lr));
  RETURN_IF_ERROR(
      CheckFinite("training.weight_decay", t.weight_decay, 0.0, 1.0));
  RETURN_IF_ERROR(CheckFinite("training.beta1", t.beta1, 0.0, 0.999999));
  RETURN_IF_ERROR(CheckFinite("training.beta2", t.beta2, 0.0, 0.999999));
  RETURN_IF_ERROR(
      CheckFinite("training.eps", t.eps, 0.0, 1.0, /*lo_open=*/true));
  RETURN_IF_ERROR(CheckFinite("training.clip_norm", t.clip_norm, 0.0, 1e6));
  RETURN_IF_ERROR(CheckRange("training.log_every", t.log_every, 1, kMaxSteps));
  return absl::OkStatus();
}

absl::Status ValidateOffload(const JobConfig& c) {
  const OffloadConfig& o = c.offload;
  RETURN_IF_ERROR(CheckRange("offload.window", o.window, 0, c.model.layers));
  RETURN_IF_ERROR(CheckRange("offload.kept_activation_layers",
                             o.kept_activation_layers, -1, c.model.layers));
  RETURN_IF_ERROR(CheckRange("offload.device_resident_layers",
                             o.device_resident_layers, 0, c.model.layers - 1));
  if (o.device_resident_layers > 0 && o.method != OffloadMethod::kStronghold) {
    return Invalid("offload.device_resident_layers",
                   "applies to stronghold only");
  }
  if (o.device_resident_layers > 0 &&
      o.window > c.model.layers - o.device_resident_layers) {
    return Invalid(
        "offload.window",
        absl::StrCat(o.window, " is more than the ",
                     c.model.layers - o.device_resident_layers,
                     " layers left beside offload.device_resident_layers ",
                     o.device_resident_layers));
  }
  if (o.speculative_updates && o.method == OffloadMethod::kResident) {
    return Invalid(
        "offload.speculative_updates",
        "applies to the windowed methods (stronghold, l2l), not resident");
  }
  if (o.gpu_memory_budget_bytes < 0) {
    return Invalid("offload.gpu_memory_budget_bytes", "must be >= 0");
  }
  if (o.host_memory_budget_bytes < 0) {
    return Invalid("offload.host_memory_budget_bytes", "must be >= 0");
  }
  // Only their form: where they are, and whether they exist, is for the
  // daemon to check as it opens them inside its ssd roots.
  RETURN_IF_ERROR(CheckRange("offload.ssd_dirs (entries)",
                             static_cast<int64_t>(o.ssd_dirs.size()), 0,
                             kMaxSsdDirs));
  for (const std::string& dir : o.ssd_dirs)
    RETURN_IF_ERROR(CheckPath("offload.ssd_dirs", dir));
  return absl::OkStatus();
}

absl::Status ValidateData(const DataConfig& d) {
  if (d.token_bytes != 0 && d.token_bytes != 2 && d.token_bytes != 4) {
    return Invalid("data.token_bytes",
                   absl::StrCat("must be 0, 2 or 4, got ", d.token_bytes));
  }
  if (d.indexed() && d.token_bytes != 0) {
    return Invalid(
        "data.token_bytes",
        absl::StrCat("must be 0 for a Megatron index (data.source '", d.source,
                     "'): its dtype gives the width, got ", d.token_bytes));
  }
  // As for offload.ssd_dirs: the file is the daemon's to find, inside its
  // data roots.
  return CheckPath("data.source", d.source);
}

bool HostnameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_';
}

// A hostname (letters, digits, '-', '_', '.'), an IPv4 address (which is one)
// or an IPv6 address (hex digits, ':' and '.', optionally in brackets).
absl::Status CheckAddress(absl::string_view field, const std::string& addr) {
  if (addr.empty()) return Invalid(field, "must not be empty");
  if (addr.size() > kMaxMasterAddrLength) {
    return Invalid(field, absl::StrCat("at most ", kMaxMasterAddrLength,
                                       " bytes, got ", addr.size()));
  }
  absl::string_view a = addr;
  if (a.size() >= 2 && a.front() == '[' && a.back() == ']')
    a = a.substr(1, a.size() - 2);
  const bool ipv6 = a.find(':') != absl::string_view::npos;
  for (char c : a) {
    const bool ok =
        ipv6 ? (absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
                c == ':' || c == '.')
             : HostnameChar(c);
    if (!ok) {
      return Invalid(field,
                     "must be a hostname or an IP address "
                     "(letters, digits, '-', '_', '.', or an IPv6 "
                     "address's hex digits and ':')");
    }
  }
  if (a.empty() || a.front() == '-' || a.front() == '.') {
    return Invalid(field, "must be a hostname or an IP address");
  }
  return absl::OkStatus();
}

// Every rank takes the same number of whole micro-batches.
absl::Status CheckBatchPerRank(const JobConfig& c) {
  const DistributedConfig& d = c.distributed;
  const int64_t per_step =
      static_cast<int64_t>(d.world_size) * c.training.micro_batch;
  if (c.training.batch % per_step != 0) {
    return Invalid(
        "training.batch",
        absl::StrCat("must be a multiple of distributed.world_size x "
                     "training.micro_batch (",
                     d.world_size, " x ", c.training.micro_batch, " = ",
                     per_step, "), got ", c.training.batch));
  }
  return absl::OkStatus();
}

absl::Status ValidateDistributed(const JobConfig& c, bool rendezvous) {
  const DistributedConfig& d = c.distributed;
  RETURN_IF_ERROR(
      CheckRange("distributed.world_size", d.world_size, 1, kMaxWorldSize));
  if (!d.enabled()) return absl::OkStatus();
  if (!rendezvous) return CheckBatchPerRank(c);
  RETURN_IF_ERROR(CheckRange("distributed.rank", d.rank, 0, d.world_size - 1));
  RETURN_IF_ERROR(
      CheckRange("distributed.local_rank", d.local_rank, 0, d.world_size - 1));
  RETURN_IF_ERROR(
      CheckRange("distributed.master_port", d.master_port, 1, 65535));
  RETURN_IF_ERROR(CheckAddress("distributed.master_addr", d.master_addr));
  // Not echoed: the key is a secret.
  if (d.job_key.size() < kMinJobKeyLength ||
      d.job_key.size() > kMaxJobKeyLength) {
    return Invalid(
        "distributed.job_key",
        absl::StrCat("must be ", kMinJobKeyLength, "..", kMaxJobKeyLength,
                     " characters, got ", d.job_key.size()));
  }
  for (char ch : d.job_key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '.' &&
        ch != '_' && ch != '~' && ch != '-') {
      return Invalid("distributed.job_key",
                     "may hold only letters, digits and . _ ~ -");
    }
  }
  RETURN_IF_ERROR(CheckRange("distributed.collective_timeout_s",
                             d.collective_timeout_s, 1,
                             kMaxCollectiveTimeoutS));
  return CheckBatchPerRank(c);
}

std::string Thousands(double v) {
  std::string digits = absl::StrFormat("%.0f", v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

absl::Status CheckDerivedSizes(const JobConfig& c) {
  // Doubles: exact enough to compare with 2^60, and no product of these
  // fields can overflow them.
  const double layers = c.model.layers, h = c.model.hidden,
               heads = c.model.heads;
  const double seq = c.model.seq_len, micro = c.training.micro_batch;
  const double vocab = static_cast<double>(c.model.padded_vocab());
  const double limit = static_cast<double>(kMaxDerivedBytes);
  const double params = Parameters<double>(c.model);
  // The planner's largest multiples of each (core/plan/memory_table.cc): ~40
  // bytes of host and device state per parameter at most (weights, their
  // gradient, moments, working copy, speculative backup, staging); a layer
  // boundary's activations at most L+1 times over (checkpoints), each layer's
  // working set (~34 boundaries and the attention's statistics) at most L
  // times (kept activations); three logits-sized fp32 tensors.
  const double boundary = micro * seq * h * 4;
  const double layer_work =
      micro * seq * 4 * LayerActivationElements<double>(c.model) +
      micro * heads * seq * 4;
  const double logits = micro * seq * vocab * 4;
  if (params * 64 > limit) {
    return Invalid(
        "model.layers x model.hidden^2",
        absl::StrCat(
            c.model.layers, " x ", c.model.hidden, "^2 (and model.vocab ",
            c.model.vocab, ") gives ", Thousands(params),
            " parameters, whose training state would exceed the limit of ",
            Thousands(limit), " bytes that sizes are checked against"));
  }
  if ((layers + 1) * (boundary + layer_work) > limit) {
    return Invalid(
        "training.micro_batch x model.seq_len x model.hidden",
        absl::StrCat(c.training.micro_batch, " x ", c.model.seq_len, " x ",
                     c.model.hidden, " gives activations of ",
                     Thousands(boundary), " bytes per layer boundary (",
                     Thousands(layer_work), " per layer while it runs) over ",
                     c.model.layers, " layers exceed the limit of ",
                     Thousands(limit),
                     " bytes that sizes are checked against"));
  }
  if (3 * logits > limit) {
    return Invalid("training.micro_batch x model.seq_len x model.vocab",
                   absl::StrCat(c.training.micro_batch, " x ", c.model.seq_len,
                                " x ", c.model.padded_vocab(),
                                " (padded) gives logits of ", Thousands(logits),
                                " bytes exceed the limit of ", Thousands(limit),
                                " bytes that sizes are checked against"));
  }
  return absl::OkStatus();
}

absl::Status ValidateJobConfig(const JobConfig& c,
                               const ValidationOptions& options) {
  if (c.name.size() > kMaxNameLength) {
    return Invalid("name", absl::StrCat("at most ", kMaxNameLength,
                                        " characters, got ", c.name.size()));
  }
  RETURN_IF_ERROR(ValidateModel(c.model));
  RETURN_IF_ERROR(ValidateTraining(c.training));
  RETURN_IF_ERROR(CheckDerivedSizes(c));
  RETURN_IF_ERROR(ValidateOffload(c));
  RETURN_IF_ERROR(ValidateData(c.data));
  RETURN_IF_ERROR(CheckRange("checkpoint.every_steps", c.checkpoint.every_steps,
                             0, kMaxSteps));
  RETURN_IF_ERROR(
      CheckRange("checkpoint.keep_last", c.checkpoint.keep_last, 0, 1'000'000));
  RETURN_IF_ERROR(ValidateDistributed(c, options.rendezvous));
  return absl::OkStatus();
}

int ComputeElementBytes(Precision precision) {
  return precision == Precision::kFp32 ? 4 : 2;
}

const char* PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
    default:
      return "fp32";
  }
}

}  // namespace stronghold::core
