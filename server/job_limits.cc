#include "server/job_limits.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/util/checked_math.h"
#include "core/util/size.h"

namespace stronghold::server {

namespace {

// Per safetensors tensor (its header entry, in the model and the optimizer
// file) and per checkpoint (job.json, manifest.json, headers' framing):
// generous, measured at a few hundred bytes each (tests/server).
constexpr int64_t kBytesPerLayerOverhead = 16 << 10;
constexpr int64_t kBytesPerCheckpointOverhead = 256 << 10;
// fp32 master + AdamW m + v.
constexpr int64_t kBytesPerParameter = 12;

}  // namespace

absl::Status ValidateJobLimits(const JobLimits& l) {
  const std::pair<const char*, int64_t> limits[] = {
      {"max_queued_jobs", l.max_queued_jobs},
      {"max_queued_jobs_per_principal", l.max_queued_jobs_per_principal},
      {"max_watch_streams", l.max_watch_streams},
      {"max_watch_streams_per_principal", l.max_watch_streams_per_principal},
      {"max_checkpoint_bytes_per_job", l.max_checkpoint_bytes_per_job},
      {"max_checkpoint_bytes_per_principal",
       l.max_checkpoint_bytes_per_principal},
  };
  for (const auto& [name, value] : limits) {
    if (value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, ": must be >= 1, got ", value));
    }
  }
  return absl::OkStatus();
}

absl::Status LimitError(const std::string& what, int64_t held, int64_t limit,
                        const std::string& flag, const std::string& hint) {
  return absl::ResourceExhaustedError(
      absl::StrCat(what, ": ", held, " of ", limit, " (strongholdd --", flag,
                   ")", hint.empty() ? "" : "; ", hint));
}

absl::Status CheckQueueLimits(const JobLimits& limits,
                              const std::string& principal, int64_t queued,
                              int64_t queued_mine) {
  if (queued >= limits.max_queued_jobs) {
    return LimitError("queued jobs", queued, limits.max_queued_jobs,
                      "max_queued_jobs", "try again when some have run");
  }
  if (queued_mine >= limits.max_queued_jobs_per_principal) {
    return LimitError(absl::StrCat("queued jobs of ", principal), queued_mine,
                      limits.max_queued_jobs_per_principal,
                      "max_queued_jobs_per_principal",
                      "try again when some have run");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CheckJobCheckpoints(const JobLimits& limits,
                                            int64_t parameters,
                                            const core::JobConfig& config) {
  const int64_t bytes = ReservedCheckpointBytes(parameters, config);
  if (bytes > limits.max_checkpoint_bytes_per_job) {
    return LimitError(absl::StrCat("checkpoint bytes of this job (up to ",
                                   KeptCheckpoints(config), " checkpoints of ",
                                   CheckpointBytes(parameters, config.model),
                                   " bytes kept at once)"),
                      bytes, limits.max_checkpoint_bytes_per_job,
                      "max_checkpoint_bytes_per_job",
                      "keep fewer (checkpoint.keep_last) or write them less "
                      "often (checkpoint.every_steps)");
  }
  return bytes;
}

absl::Status CheckPrincipalCheckpoints(const JobLimits& limits,
                                       const std::string& principal,
                                       int64_t held, int64_t bytes) {
  const int64_t total = core::SaturatingAdd(held, bytes);
  if (total > limits.max_checkpoint_bytes_per_principal) {
    return LimitError(
        absl::StrCat("checkpoint bytes held and reserved by the jobs of ",
                     principal, " with this one (", bytes, ")"),
        total, limits.max_checkpoint_bytes_per_principal,
        "max_checkpoint_bytes_per_principal",
        "delete ended jobs (strongholdctl delete JOB) or keep fewer "
        "checkpoints (checkpoint.keep_last)");
  }
  return absl::OkStatus();
}

absl::Status CheckCheckpointsHeld(const JobLimits& limits, int64_t bytes) {
  if (bytes <= limits.max_checkpoint_bytes_per_job) return absl::OkStatus();
  return LimitError("checkpoint bytes of this job", bytes,
                    limits.max_checkpoint_bytes_per_job,
                    "max_checkpoint_bytes_per_job");
}

int64_t CheckpointBytes(int64_t parameters, const core::ModelConfig& model) {
  return core::SaturatingAdd(
      core::SaturatingMul(parameters, kBytesPerParameter),
      core::SaturatingAdd(
          core::SaturatingMul(model.layers + 4, kBytesPerLayerOverhead),
          kBytesPerCheckpointOverhead));
}

int64_t KeptCheckpoints(const core::JobConfig& config) {
  const int64_t steps = config.training.steps;
  const int64_t every = config.checkpoint.every_steps;
  // Periodic ones, and the final one unless the last periodic one is it.
  const int64_t written =
      every > 0 ? steps / every + (steps % every != 0 ? 1 : 0) : 1;
  // One more: a checkpoint on cancel --checkpoint or at a shutdown.
  const int64_t keep = config.checkpoint.keep_last;
  return keep > 0 ? std::min(written + 1, keep + 1) : written + 1;
}

int64_t ReservedCheckpointBytes(int64_t parameters,
                                const core::JobConfig& config) {
  return core::SaturatingMul(CheckpointBytes(parameters, config.model),
                             KeptCheckpoints(config));
}

absl::StatusOr<int64_t> ParseQuota(const std::string& flag,
                                   const std::string& text,
                                   int64_t capacity_bytes) {
  absl::string_view s = absl::StripAsciiWhitespace(text);
  if (absl::ConsumeSuffix(&s, "%")) {
    double percent = 0;
    if (!absl::SimpleAtod(s, &percent) || !(percent > 0) || percent > 100) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": invalid percentage \"", text,
                       "\" (expected (0, 100]%)"));
    }
    return std::max<int64_t>(
        1, static_cast<int64_t>(capacity_bytes * (percent / 100)));
  }
  absl::StatusOr<int64_t> bytes = core::ParseSize(flag, text);
  if (bytes.ok() && *bytes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": must be at least 1 byte"));
  }
  return bytes;
}

int64_t DirectoryBytes(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int64_t bytes = 0;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const uintmax_t size = it->file_size(size_ec);
      if (!size_ec)
        bytes = core::SaturatingAdd(bytes, static_cast<int64_t>(size));
    }
  }
  return bytes;
}

StreamSlots::Slot::~Slot() {
  if (slots_ == nullptr) return;
  absl::MutexLock lock(&slots_->mu_);
  --slots_->total_;
  if (--slots_->per_principal_[principal_] == 0)
    slots_->per_principal_.erase(principal_);
}

absl::StatusOr<StreamSlots::Slot> StreamSlots::Acquire(
    const std::string& principal) {
  absl::MutexLock lock(&mu_);
  if (total_ >= max_total_) {
    return LimitError("open WatchJob streams", total_, max_total_,
                      "max_watch_streams");
  }
  int& mine = per_principal_[principal];
  if (mine >= max_per_principal_) {
    return LimitError(absl::StrCat("open WatchJob streams of ", principal),
                      mine, max_per_principal_,
                      "max_watch_streams_per_principal");
  }
  ++mine;
  ++total_;
  return Slot(this, principal);
}

}  // namespace stronghold::server
