#include "client/job_spec_flags.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <optional>
#include <sstream>
#include <string>
#include <utility>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/util/size.h"
#include "core/util/status_macros.h"
#include "google/protobuf/util/json_util.h"

namespace stronghold::client {
namespace {

using ::stronghold::v1::JobSpec;

// Parses a flag's text and stores it in the spec.
using Setter = std::function<absl::Status(absl::string_view flag,
                                          absl::string_view text, JobSpec&)>;

struct SpecFlag {
  FlagSpec flag;
  Setter set;
};

absl::Status BadValue(absl::string_view flag, absl::string_view text,
                      absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag, ": invalid value \"", text, "\" (expected ", expected, ")"));
}

Setter Int32(std::function<void(JobSpec&, int32_t)> store) {
  return
      [store](absl::string_view flag, absl::string_view text, JobSpec& spec) {
        int32_t value = 0;
        if (!absl::SimpleAtoi(text, &value)) {
          return BadValue(flag, text, "a 32-bit integer");
        }
        store(spec, value);
        return absl::OkStatus();
      };
}

Setter Uint64(std::function<void(JobSpec&, uint64_t)> store) {
  return
      [store](absl::string_view flag, absl::string_view text, JobSpec& spec) {
        uint64_t value = 0;
        if (!absl::SimpleAtoi(text, &value)) {
          return BadValue(flag, text, "a non-negative 64-bit integer");
        }
        store(spec, value);
        return absl::OkStatus();
      };
}

Setter Double(std::function<void(JobSpec&, double)> store) {
  return
      [store](absl::string_view flag, absl::string_view text, JobSpec& spec) {
        double value = 0;
        if (!absl::SimpleAtod(text, &value) || !std::isfinite(value)) {
          return BadValue(flag, text, "a finite number such as 3e-4");
        }
        store(spec, value);
        return absl::OkStatus();
      };
}

Setter Size(std::function<void(JobSpec&, int64_t)> store) {
  return [store](absl::string_view flag, absl::string_view text,
                 JobSpec& spec) -> absl::Status {
    ASSIGN_OR_RETURN(const int64_t bytes, core::ParseSize(flag, text));
    store(spec, bytes);
    return absl::OkStatus();
  };
}

Setter String(std::function<void(JobSpec&, std::string)> store) {
  return [store](absl::string_view, absl::string_view text, JobSpec& spec) {
    store(spec, std::string(text));
    return absl::OkStatus();
  };
}

// An enum flag: `names` lists the accepted lower-case words and their values.
template <typename E>
Setter Enum(std::vector<std::pair<std::string, E>> names,
            std::function<void(JobSpec&, E)> store) {
  return [names, store](absl::string_view flag, absl::string_view text,
                        JobSpec& spec) {
    std::string expected;
    for (const auto& [name, value] : names) {
      if (absl::EqualsIgnoreCase(text, name)) {
        store(spec, value);
        return absl::OkStatus();
      }
      absl::StrAppend(&expected, expected.empty() ? "" : "|", name);
    }
    return BadValue(flag, text, expected);
  };
}

// An "on|off|auto" flag of an optional bool offload field: auto clears it,
// which leaves the choice to the daemon (docs/prediction.md).
Setter OnOffAuto(void (v1::OffloadSpec::*set)(bool),
                 void (v1::OffloadSpec::*clear)()) {
  return Enum<int>({{"on", 1}, {"off", 0}, {"auto", -1}},
                   [set, clear](JobSpec& s, int v) {
                     v1::OffloadSpec* o = s.mutable_offload();
                     if (v < 0) {
                       (o->*clear)();
                     } else {
                       (o->*set)(v == 1);
                     }
                   });
}

const std::vector<SpecFlag>& SpecFlags() {
  using v1::OffloadMethod;
  using v1::Precision;
  static const auto* flags = new std::vector<SpecFlag>{
      {{"name", "TEXT", "job name, free text"},
       String([](JobSpec& s, std::string v) { s.set_name(std::move(v)); })},
      {{"layers", "N", "transformer blocks"},
       Int32([](JobSpec& s, int32_t v) { s.mutable_model()->set_layers(v); })},
      {{"hidden", "N", "model width, divisible by --heads"},
       Int32([](JobSpec& s, int32_t v) { s.mutable_model()->set_hidden(v); })},
      {{"heads", "N", "attention heads"},
       Int32([](JobSpec& s, int32_t v) { s.mutable_model()->set_heads(v); })},
      {{"seq-len", "N", "training sequence length"},
       Int32([](JobSpec& s, int32_t v) { s.mutable_model()->set_seq_len(v); })},
      {{"vocab", "N", "vocabulary size"},
       Int32([](JobSpec& s, int32_t v) { s.mutable_model()->set_vocab(v); })},
      {{"vocab-multiple", "N",
        "pad the vocabulary to a multiple of N (1..1024, default 128; 1 with "
        "--init-from)"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_model()->set_vocab_multiple(v);
       })},
      {{"architecture", "gpt|llama", "model architecture (docs/model.md)"},
       Enum<v1::Architecture>({{"gpt", v1::GPT}, {"llama", v1::LLAMA}},
                              [](JobSpec& s, v1::Architecture v) {
                                s.mutable_model()->set_architecture(v);
                              })},
      {{"kv-heads", "N", "llama: key/value heads, dividing --heads"},
       Int32(
           [](JobSpec& s, int32_t v) { s.mutable_model()->set_kv_heads(v); })},
      {{"intermediate", "N", "llama: SwiGLU inner size"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_model()->set_intermediate(v);
       })},
      {{"rope-theta", "X", "llama: rotary embedding base"},
       Double(
           [](JobSpec& s, double v) { s.mutable_model()->set_rope_theta(v); })},
      {{"norm-eps", "X", "llama: RMSNorm epsilon"},
       Double(
           [](JobSpec& s, double v) { s.mutable_model()->set_norm_eps(v); })},
      {{"tie-embeddings", "on|off",
        "llama: the LM head is the token embedding"},
       Enum<bool>({{"on", true}, {"off", false}},
                  [](JobSpec& s, bool v) {
                    s.mutable_model()->set_tie_embeddings(v);
                  })},
      {{"batch", "N", "global batch in sequences"},
       Int32(
           [](JobSpec& s, int32_t v) { s.mutable_training()->set_batch(v); })},
      {{"micro-batch", "N", "sequences per forward/backward"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_training()->set_micro_batch(v);
       })},
      {{"steps", "N", "optimizer steps"}, Int32([](JobSpec& s, int32_t v) {
         s.mutable_training()->set_steps(v);
       })},
      {{"lr", "X", "peak learning rate"},
       Double([](JobSpec& s, double v) { s.mutable_training()->set_lr(v); })},
      {{"warmup-steps", "N", "linear warm-up steps"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_training()->set_warmup_steps(v);
       })},
      {{"min-lr", "X", "learning rate at the end of the cosine decay"},
       Double(
           [](JobSpec& s, double v) { s.mutable_training()->set_min_lr(v); })},
      {{"weight-decay", "X", "AdamW decoupled weight decay"},
       Double([](JobSpec& s, double v) {
         s.mutable_training()->set_weight_decay(v);
       })},
      {{"beta1", "X", "AdamW beta1"}, Double([](JobSpec& s, double v) {
         s.mutable_training()->set_beta1(v);
       })},
      {{"beta2", "X", "AdamW beta2"}, Double([](JobSpec& s, double v) {
         s.mutable_training()->set_beta2(v);
       })},
      {{"eps", "X", "AdamW epsilon"},
       Double([](JobSpec& s, double v) { s.mutable_training()->set_eps(v); })},
      {{"clip-norm", "X", "global gradient-norm clip; 0 = off"},
       Double([](JobSpec& s, double v) {
         s.mutable_training()->set_clip_norm(v);
       })},
      {{"seed", "N", "random seed"}, Uint64([](JobSpec& s, uint64_t v) {
         s.mutable_training()->set_seed(v);
       })},
      {{"precision", "fp32|bf16|fp16", "training precision"},
       Enum<Precision>(
           {{"fp32", v1::FP32}, {"bf16", v1::BF16}, {"fp16", v1::FP16}},
           [](JobSpec& s, Precision v) {
             s.mutable_training()->set_precision(v);
           })},
      {{"log-every", "N", "steps between metric events"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_training()->set_log_every(v);
       })},
      {{"method", "resident|l2l|stronghold", "offload method"},
       Enum<OffloadMethod>({{"resident", v1::RESIDENT},
                            {"l2l", v1::L2L},
                            {"stronghold", v1::STRONGHOLD}},
                           [](JobSpec& s, OffloadMethod v) {
                             s.mutable_offload()->set_method(v);
                           })},
      {{"window", "N", "layers on the device (stronghold); 0 = automatic"},
       Int32(
           [](JobSpec& s, int32_t v) { s.mutable_offload()->set_window(v); })},
      {{"kept-activation-layers", "N",
        "stronghold: last N layers keep activations instead of recomputing "
        "them; 0 = as many as the device budget holds, -1 = none"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_offload()->set_kept_activation_layers(v);
       })},
      {{"speculative-updates", "on|off|auto",
        "stronghold/l2l with clipping: update layers during backward, undo and "
        "redo clipped steps (same results; 12-14 B/param more host memory); "
        "default auto: chosen from the predicted step time"},
       OnOffAuto(&v1::OffloadSpec::set_speculative_updates,
                 &v1::OffloadSpec::clear_speculative_updates)},
      {{"device-embedding-optimizer", "on|off|auto",
        "update the embedding on the device (its Adam state there: 12-16 "
        "B/embedding param of device memory) instead of the CPU; default "
        "auto: chosen from the predicted step time"},
       OnOffAuto(&v1::OffloadSpec::set_device_embedding_optimizer,
                 &v1::OffloadSpec::clear_device_embedding_optimizer)},
      {{"device-resident-layers", "N",
        "stronghold: layers 0..N-1 stay on the device with their optimizer "
        "state, updated there (20 B/param in fp32); 0 = none; default: "
        "chosen from the predicted step time"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_offload()->set_device_resident_layers(v);
       })},
      {{"gpu-memory-budget", "SIZE", "device memory budget, e.g. 8GiB"},
       Size([](JobSpec& s, int64_t v) {
         s.mutable_offload()->set_gpu_memory_budget_bytes(v);
       })},
      {{"host-memory-budget", "SIZE", "host memory budget, e.g. 64GiB"},
       Size([](JobSpec& s, int64_t v) {
         s.mutable_offload()->set_host_memory_budget_bytes(v);
       })},
      {{"data", "SOURCE",
        "\"builtin\", a token file (.u16/.bin/.u32) or a Megatron index "
        "(.idx)"},
       String([](JobSpec& s, std::string v) {
         s.mutable_data()->set_source(std::move(v));
       })},
      {{"token-bytes", "N", "bytes per token in --data: 2 or 4"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_data()->set_token_bytes(v);
       })},
      {{"checkpoint-every", "N", "steps between checkpoints"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_checkpoint()->set_every_steps(v);
       })},
      {{"keep-last", "N", "checkpoints to keep; 0 = all"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_checkpoint()->set_keep_last(v);
       })},
      {{"world-size", "N",
        "ranks of a job on many daemons (docs/distributed.md)"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_distributed()->set_world_size(v);
       })},
      {{"rank", "N", "this daemon's rank, 0..world-size-1"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_distributed()->set_rank(v);
       })},
      {{"local-rank", "N", "the rank on its node"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_distributed()->set_local_rank(v);
       })},
      {{"master-addr", "HOST", "where rank 0's daemon hosts the rendezvous"},
       String([](JobSpec& s, std::string v) {
         s.mutable_distributed()->set_master_addr(std::move(v));
       })},
      {{"master-port", "PORT", "the rendezvous port on --master-addr"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_distributed()->set_master_port(v);
       })},
      {{"job-key", "KEY",
        "shared secret of the job's ranks, 8-128 of [A-Za-z0-9._~-] (shows in "
        "ps: prefer $STRONGHOLD_JOB_KEY with --dist-from-env)"},
       String([](JobSpec& s, std::string v) {
         s.mutable_distributed()->set_job_key(std::move(v));
       })},
      {{"collective-timeout", "SECONDS",
        "how long a rank waits for the others before the job fails; 0 = 300"},
       Int32([](JobSpec& s, int32_t v) {
         s.mutable_distributed()->set_collective_timeout_s(v);
       })},
      {{"resume-from", "JOB[@STEP]",
        "continue from a checkpoint of JOB (its newest, or step STEP): JOB's "
        "spec with the flags given here on top"},
       String(
           [](JobSpec& s, std::string v) { s.set_resume_from(std::move(v)); })},
      {{"init-from", "DIR",
        "start from the weights of a Hugging Face model directory inside the "
        "daemon's --data_root (config.json + safetensors); the model's sizes "
        "come from its config.json (docs/finetune.md)"},
       String(
           [](JobSpec& s, std::string v) { s.set_init_from(std::move(v)); })},
  };
  return *flags;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--spec: cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A variable's integer in [lo, hi]; INVALID_ARGUMENT naming the variable.
absl::StatusOr<int32_t> EnvInt(absl::string_view var, const std::string& text,
                               int32_t lo, int32_t hi) {
  int32_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < lo || value > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("--dist-from-env: ", var, "=\"", text,
                     "\" is not an integer in [", lo, ", ", hi, "]"));
  }
  return value;
}

bool Own(const JobSpecFlagsOptions& options, absl::string_view name) {
  return absl::c_linear_search(options.own_flags, name);
}

}  // namespace

absl::Status ApplyDistributedEnv(const EnvLookup& env, JobSpec* spec) {
  // The first of `names` that is set, and which one it was.
  auto first = [&](std::initializer_list<const char*> names)
      -> std::optional<std::pair<std::string, std::string>> {
    for (const char* name : names) {
      if (std::optional<std::string> value = env(name))
        return std::make_pair(std::string(name), *value);
    }
    return std::nullopt;
  };
  const auto world = first({"WORLD_SIZE", "SLURM_NTASKS"});
  const auto rank = first({"RANK", "SLURM_PROCID"});
  if (!world.has_value()) {
    return absl::InvalidArgumentError(
        "--dist-from-env: neither WORLD_SIZE nor SLURM_NTASKS is set");
  }
  v1::DistributedSpec* d = spec->mutable_distributed();
  ASSIGN_OR_RETURN(const int32_t world_size,
                   EnvInt(world->first, world->second, 1, 1 << 20));
  d->set_world_size(world_size);
  if (!rank.has_value()) {
    return absl::InvalidArgumentError(
        "--dist-from-env: neither RANK nor SLURM_PROCID is set");
  }
  ASSIGN_OR_RETURN(const int32_t r,
                   EnvInt(rank->first, rank->second, 0, world_size - 1));
  d->set_rank(r);
  if (const auto local = first({"LOCAL_RANK", "SLURM_LOCALID"})) {
    ASSIGN_OR_RETURN(const int32_t local_rank,
                     EnvInt(local->first, local->second, 0, world_size - 1));
    d->set_local_rank(local_rank);
  }
  if (world_size == 1) return absl::OkStatus();  // nothing to meet
  const std::optional<std::string> addr = env("MASTER_ADDR");
  if (!addr.has_value() || addr->empty()) {
    return absl::InvalidArgumentError(
        "--dist-from-env: MASTER_ADDR is not set");
  }
  d->set_master_addr(*addr);
  const std::optional<std::string> port = env("MASTER_PORT");
  if (!port.has_value()) {
    return absl::InvalidArgumentError(
        "--dist-from-env: MASTER_PORT is not set");
  }
  ASSIGN_OR_RETURN(const int32_t p, EnvInt("MASTER_PORT", *port, 1, 65535));
  d->set_master_port(p);
  if (std::optional<std::string> key = env("STRONGHOLD_JOB_KEY"))
    d->set_job_key(*key);
  return absl::OkStatus();
}

std::optional<std::string> ProcessEnv(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

const std::vector<FlagSpec>& JobSpecFlags() {
  static const auto* flags = [] {
    auto* all = new std::vector<FlagSpec>{
        {"spec", "FILE", "JobSpec in JSON; flags beside it override it"}};
    for (const SpecFlag& spec_flag : SpecFlags()) {
      all->push_back(spec_flag.flag);
    }
    all->push_back({"ssd-dir", "DIR", "NVMe tier directory (repeatable)",
                    /*repeatable=*/true});
    all->push_back({"dist-from-env", "",
                    "ranks from MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, "
                    "LOCAL_RANK (else SLURM_NTASKS, SLURM_PROCID, "
                    "SLURM_LOCALID) and STRONGHOLD_JOB_KEY; flags override"});
    return all;
  }();
  return *flags;
}

std::vector<FlagSpec> JobSpecFlags(const JobSpecFlagsOptions& options) {
  std::vector<FlagSpec> flags;
  for (const FlagSpec& flag : JobSpecFlags()) {
    if (!Own(options, flag.name)) flags.push_back(flag);
  }
  return flags;
}

absl::StatusOr<JobSpec> BuildJobSpec(const ParsedArgs& args,
                                     const JobSpecFlagsOptions& options) {
  JobSpec spec = options.base;
  if (std::optional<std::string> path = args.Get("spec")) {
    ASSIGN_OR_RETURN(const std::string json, ReadFile(*path));
    google::protobuf::util::JsonParseOptions parse_options;
    // A typo must not go unnoticed.
    parse_options.ignore_unknown_fields = false;
    JobSpec from_file;
    const auto status = google::protobuf::util::JsonStringToMessage(
        json, &from_file, parse_options);
    if (!status.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--spec ", *path,
          ": not a valid JobSpec in JSON: ", std::string(status.message())));
    }
    spec.MergeFrom(from_file);
  }
  if (args.Has("dist-from-env") && !Own(options, "dist-from-env")) {
    RETURN_IF_ERROR(ApplyDistributedEnv(
        options.env ? options.env : EnvLookup(&ProcessEnv), &spec));
  }
  for (const SpecFlag& spec_flag : SpecFlags()) {
    if (Own(options, spec_flag.flag.name)) continue;
    if (std::optional<std::string> text = args.Get(spec_flag.flag.name)) {
      RETURN_IF_ERROR(spec_flag.set(spec_flag.flag.name, *text, spec));
    }
  }
  if (args.Has("ssd-dir") && !Own(options, "ssd-dir")) {
    auto* dirs = spec.mutable_offload()->mutable_ssd_dirs();
    dirs->Clear();
    for (const std::string& dir : args.GetAll("ssd-dir")) {
      if (dir.empty()) {
        return absl::InvalidArgumentError("--ssd-dir: empty directory");
      }
      dirs->Add(std::string(dir));
    }
  }
  return spec;
}

}  // namespace stronghold::client
