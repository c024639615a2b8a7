// A training job's configuration: what the user asked, in plain structs (no
// protobuf; server/ converts the API's JobSpec into this, filling defaults).
// Requests such as "0 = automatic" stay requests here: the planner resolves
// them once into the job's execution plan (core/plan/execution_plan.h).
#ifndef STRONGHOLD_CORE_PLAN_JOB_CONFIG_H_
#define STRONGHOLD_CORE_PLAN_JOB_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace stronghold::core {

// The model's architecture (docs/model.md):
//   kGpt:   Megatron-style GPT: learned positions, LayerNorm, GELU MLP (4h),
//           biases, the LM head tied to the token embedding.
//   kLlama: Llama-family: RoPE, RMSNorm, SwiGLU MLP (`intermediate`),
//           grouped-query attention (`kv_heads`), no biases, the LM head tied
//           or not (`tie_embeddings`).
enum class Architecture { kGpt, kLlama };
// "gpt", "llama".
const char* ArchitectureName(Architecture architecture);

struct ModelConfig {
  Architecture architecture = Architecture::kGpt;
  int layers = 2;
  int hidden = 64;
  int heads = 4;
  int seq_len = 64;  // also the size of the GPT's position table
  int vocab = 256;   // as given; padded_vocab() is what is allocated
  // The embedding's rows are padded up to a multiple of this (aligned
  // matrix shapes run faster). An imported Hugging Face model sets 1: a
  // padded row would be a logit of its own and change the softmax.
  int vocab_multiple = kDefaultVocabMultiple;
  // Llama only (a GPT leaves them at their defaults; ValidateJobConfig
  // refuses one that does not):
  int kv_heads = 0;             // key/value heads, dividing heads; 0 = heads
  int intermediate = 0;         // SwiGLU inner size I; > 0 for llama
  double rope_theta = 10000;    // RoPE base
  double norm_eps = 1e-5;       // RMSNorm epsilon
  bool tie_embeddings = false;  // LM head = wte (a GPT is always tied)

  static constexpr int kDefaultVocabMultiple = 128;
  static constexpr int kMaxVocabMultiple = 1024;
  int64_t padded_vocab() const {
    const int64_t k = vocab_multiple;
    return (static_cast<int64_t>(vocab) + k - 1) / k * k;
  }
  bool llama() const { return architecture == Architecture::kLlama; }
  int64_t head_dim() const { return hidden / heads; }
  // kv_heads, or heads where it is 0 (and always for the GPT).
  int key_value_heads() const;
  // The LM head has its own weight (llama with tie_embeddings false).
  bool untied_head() const { return llama() && !tie_embeddings; }

  // The sizes of the buffers of core/model/gpt_layout.h (which CHECKs that
  // its layouts add up to these), in fp32 elements:
  // one block: GPT 12h^2 + 13h (LN1, QKV, projection, LN2, MLP h -> 4h -> h,
  // with biases); llama h*(heads + 2*kv_heads)*hd + h*heads*hd + 3*h*I + 2h.
  int64_t parameters_per_layer() const;
  // "embedding": GPT (V + S) * h (token and position tables); llama V * h.
  int64_t embedding_parameters() const;
  // "final_norm": GPT 2h (LayerNorm); llama h, + V * h when untied.
  int64_t final_parameters() const;
  // L * parameters_per_layer() + embedding_parameters() + final_parameters().
  int64_t parameters() const;
  // Model FLOPs of one training step over `batch` sequences (3x the
  // forward's matmuls). GPT: Megatron's 72*B*s*L*h^2*(1 + s/(6h) +
  // V/(12*L*h)); llama: 6*B*s*(L*(M + 2*s*heads*hd) + V*h), M = a block's
  // matmul weights.
  double model_flops_per_step(int64_t batch) const;
  // Elements per token that one block keeps for backward, plus their
  // gradients during backward (the planner's working set of a layer, a
  // multiple of [b, s] in the compute precision). GPT 34h.
  int64_t layer_activation_elements_per_token() const;
};

// The llama intermediate size a spec gets when it names none: 8h/3
// (SwiGLU's three matrices cost as much as a 4h GELU MLP's two) rounded up
// to a multiple of 256, as Meta's Llama reference code does.
int DefaultIntermediate(int hidden);

enum class Precision { kFp32, kBf16, kFp16 };
enum class OffloadMethod { kResident, kL2L, kStronghold };

// Bytes per element of weights, gradients and activations on the compute
// device: 4 for fp32, 2 for bf16 and fp16.
int ComputeElementBytes(Precision precision);
// "fp32", "bf16", "fp16".
const char* PrecisionName(Precision precision);

struct TrainingConfig {
  int batch = 8;        // global batch, sequences
  int micro_batch = 8;  // sequences per forward/backward
  int steps = 30;
  double lr = 3e-3;
  int warmup_steps = 0;
  double min_lr = 0.0;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double clip_norm = 1.0;  // 0 = no clipping
  uint64_t seed = 1234;
  Precision precision = Precision::kFp32;
  int log_every = 1;
};

struct OffloadConfig {
  OffloadMethod method = OffloadMethod::kResident;
  int window = 0;                        // 0 = automatic
  int64_t gpu_memory_budget_bytes = 0;   // 0 = device capacity
  int64_t host_memory_budget_bytes = 0;  // 0 = node budget
  std::vector<std::string> ssd_dirs;
  // STRONGHOLD: the last N block layers keep their activations for backward
  // instead of recomputing them. 0 = automatic (as many as the device budget
  // holds beside the window), -1 = none (resolved by the planner:
  // ExecutionPlan::kept_activation_layers).
  int kept_activation_layers = 0;
  // STRONGHOLD/L2L with clipping or fp16: update each layer as its gradient
  // lands, as if the step will not be clipped, after saving its param and
  // moments on the host (12 B per parameter); a step that turns out clipped
  // (or, in fp16, overflowed) is restored and redone. The same results as
  // waiting for the global norm; the CPU AdamW leaves the critical path on
  // steps that are not clipped. docs/engine.md, "Global-norm clipping".
  bool speculative_updates = false;
  // The windowed methods: the embedding's AdamW state (fp32 moments and
  // gradient accumulator, and in bf16/fp16 the fp32 master) stays on the
  // device and is updated there once the step's global norm is known
  // (core/optim/device_adamw.h): 12-16 B per embedding parameter of device
  // memory, and the embedding's D2H copy, CPU update and H2D copy leave the gap
  // between two steps. The host copy is brought up to date whenever the
  // host state is read (checkpoints). docs/engine.md.
  bool device_embedding_optimizer = false;
  // STRONGHOLD: block layers 0..N-1 stay on the device (weights, gradient,
  // and the optimizer state as above: 8 + 12 B per parameter in fp32, 4 + 16
  // in bf16/fp16), are never copied in or out, and are updated there once
  // the global norm is known; the window rotates through the other layers
  // (window <= layers - N). The next step's first N layers then wait for no
  // CPU update, and the CPU updates N fewer layers (algorithm.md §2: the
  // artifact kept layers 0..W-1 on the GPU). 0 = none.
  int device_resident_layers = 0;
  // Which of the three options above the spec left unset: the planner
  // chooses them from the schedule model where the node has a hardware
  // profile (core/plan/auto_config.h) and writes the choice into the fields
  // above; until then (and without a profile) they hold their defaults, off.
  struct Automatic {
    bool speculative_updates = false;
    bool device_embedding_optimizer = false;
    bool device_resident_layers = false;
    bool any() const {
      return speculative_updates || device_embedding_optimizer ||
             device_resident_layers;
    }
  };
  Automatic automatic;
};

// Whether a step's updates need the whole step's gradient first: global-norm
// clipping needs its norm, and in fp16 an overflow anywhere skips the step.
inline bool UpdatesNeedWholeGradient(double clip_norm, Precision precision) {
  return clip_norm > 0 || precision == Precision::kFp16;
}

// Whether a job's updates are speculative: the option is set and its updates
// would otherwise wait for the whole step's gradient.
inline bool SpeculativeUpdates(const OffloadConfig& o,
                               const TrainingConfig& t) {
  return o.speculative_updates &&
         UpdatesNeedWholeGradient(t.clip_norm, t.precision);
}

struct DataConfig {
  // "builtin", a token file path, or a Megatron index "PREFIX.idx" (its
  // tokens in "PREFIX.bin" beside it; core/data/dataset.h).
  std::string source = "builtin";
  int token_bytes = 0;  // 2 or 4; 0 = from the file name (or the index)

  bool indexed() const {
    return source.size() > 4 &&
           source.compare(source.size() - 4, 4, ".idx") == 0;
  }
};

struct CheckpointConfig {
  int every_steps = 0;
  int keep_last = 0;
};

// One job on many daemons (docs/distributed.md). world_size 1 = a
// single-daemon job: the other fields are then ignored.
struct DistributedConfig {
  std::string master_addr;  // rank 0's daemon hosts the rendezvous store here
  int master_port = 0;      // 1..65535; 0 only with world_size 1
  int world_size = 1;
  int rank = 0;        // 0..world_size-1
  int local_rank = 0;  // informational: the rank on its node
  // A shared secret naming the job on the store; never printed
  // (RedactedJobKey).
  std::string job_key;
  // How long a rank waits for the others (rendezvous, heartbeats,
  // collectives) before the job fails naming the missing ranks.
  int collective_timeout_s = 300;

  bool enabled() const { return world_size > 1; }
};

struct JobConfig {
  std::string name;
  ModelConfig model;
  TrainingConfig training;
  OffloadConfig offload;
  DataConfig data;
  CheckpointConfig checkpoint;
  DistributedConfig distributed;
};

// Learning rate of 1-based `step`: linear warm-up to lr over warmup_steps,
// then cosine decay to min_lr at `steps`.
double LearningRate(const TrainingConfig& training, int64_t step);

// Checks every field against its limit before anything is allocated.
// Returns INVALID_ARGUMENT naming the field (as in the API, e.g.
// "model.hidden") and the limit it broke. Touches no file: data.source and
// offload.ssd_dirs are checked for their form only (the daemon opens them
// inside its roots, server/path_confinement.h).
struct ValidationOptions {
  // Check where and how the ranks of a distributed job meet (master_addr,
  // master_port, rank, job_key, collective_timeout_s). false for a plan
  // (PlanJob): only distributed.world_size and the batch rule matter there.
  bool rendezvous = true;
};
absl::Status ValidateJobConfig(const JobConfig& config,
                               const ValidationOptions& options = {});

// The sizes a job derives from its fields (parameters, the training state's
// bytes, activations per layer boundary and per layer, logits), estimated
// without overflow: INVALID_ARGUMENT naming the fields whose product is
// beyond kMaxDerivedBytes. Each field has its own limit, but their products
// need not fit in 64 bits; below this bound every byte count the planner
// computes does. ValidateJobConfig and PlanExecution check it.
absl::Status CheckDerivedSizes(const JobConfig& config);

// Limits enforced by ValidateJobConfig.
inline constexpr int kMaxLayers = 1024;
inline constexpr int kMaxHidden = 65536;
inline constexpr int kMaxSeqLen = 65536;
inline constexpr int kMaxVocab = 1 << 22;
inline constexpr int kMaxIntermediate = 1 << 20;  // model.intermediate
inline constexpr double kMaxRopeTheta = 1e12;     // model.rope_theta
inline constexpr double kMaxNormEps = 1e-2;       // model.norm_eps
inline constexpr int kMaxSteps = 100'000'000;
inline constexpr int kMaxNameLength = 128;
inline constexpr int kMaxPathLength = 4095;  // PATH_MAX - 1
inline constexpr int kMaxSsdDirs = 64;
inline constexpr int kMaxWorldSize = 1024;
inline constexpr int kMaxMasterAddrLength = 253;  // a DNS name's limit
inline constexpr int kMinJobKeyLength = 8;
inline constexpr int kMaxJobKeyLength = 128;
inline constexpr int kMaxCollectiveTimeoutS = 3600;
inline constexpr int kDefaultCollectiveTimeoutS = 300;
// What the API and the logs show instead of a job key.
inline constexpr char kRedactedJobKey[] = "<redacted>";
// 1 EiB: far above any node's memory and disks, far below int64's range.
inline constexpr int64_t kMaxDerivedBytes = int64_t{1} << 60;

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_JOB_CONFIG_H_
