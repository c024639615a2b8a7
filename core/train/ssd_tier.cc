#include "core/train/ssd_tier.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/engine/loss_scale.h"
#include "core/model/gpt_init.h"
#include "core/plan/planner.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "storage/block_device_factory.h"

namespace stronghold::core {

SsdTier::SsdTier(const JobConfig& config, const ExecutionPlan& plan,
                 const TrainerOptions& options, std::vector<BufferShard> shards)
    : config_(config),
      plan_(plan),
      options_(options),
      layouts_(ModelLayout(config.model)),
      shards_(std::move(shards)) {}

absl::Status SsdTier::CheckPlan() const {
  if (plan_.ssd_layers > 0 && (plan_.method == OffloadMethod::kResident ||
                               plan_.ssd_layers > config_.model.layers)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ssd_layers ", plan_.ssd_layers,
                     ": the NVMe tier holds up to model.layers layers' "
                     "moments, for the windowed methods"));
  }
  if (plan_.ssd_layers > 0 && plan_.speculative_updates) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offload.speculative_updates: not with state on the NVMe tier "
        "(ssd_layers ",
        plan_.ssd_layers, "); raise the host budget or turn speculation off"));
  }
  if (plan_.ssd_layers > 0 && plan_.device_resident_layers > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "offload.device_resident_layers: not with state on the NVMe tier "
        "(ssd_layers ",
        plan_.ssd_layers,
        ", which start at layer 0); raise the host budget or set it to 0"));
  }
  // A shared accumulator would mix layers' gradients if any lived past the
  // task that lands it.
  if (plan_.ssd_grads_transient &&
      !SsdGradsTransient(config_.training, plan_.world_size)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ssd_grads_transient: the spilled layers share one gradient "
        "accumulator only with one micro-batch per rank and step "
        "(training.batch ",
        config_.training.batch, ", training.micro_batch ",
        config_.training.micro_batch, ", ", plan_.world_size,
        " ranks) and updates as gradients land (training.clip_norm 0, not "
        "fp16)"));
  }
  if (plan_.ssd_weight_layers >
      std::min(plan_.ssd_layers, config_.model.layers)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ssd_weight_layers ", plan_.ssd_weight_layers,
                     ": what H2D sends goes to the NVMe tier only for layers "
                     "whose optimizer state is there (ssd_layers ",
                     plan_.ssd_layers, ")"));
  }
  return absl::OkStatus();
}

bool SsdTier::Spilled(int i) const {
  return plan_.method != OffloadMethod::kResident && i >= 1 &&
         i <= std::min(plan_.ssd_layers, config_.model.layers);
}

bool SsdTier::MasterSpilled(int i) const {
  return Spilled(i) && (SsdHoldsMasters(config_.training.precision) ||
                        i <= plan_.ssd_weight_layers);
}

bool SsdTier::WeightSpilled(int i) const {
  return Spilled(i) && i <= plan_.ssd_weight_layers &&
         config_.training.precision != Precision::kFp32;
}

int SsdTier::SentArray(int i) const {
  if (WeightSpilled(i)) return 3;
  return MasterSpilled(i) && config_.training.precision == Precision::kFp32
             ? 2
             : -1;
}

int64_t SsdTier::LargestSpilled() const {
  int64_t largest = 0;
  for (int i = 1; Spilled(i); ++i) largest = std::max(largest, Count(i));
  return largest;
}

// The moments and, where spilled, the master (null ones are not
// transferred; nor is the working copy, WriteWorking's).
template <typename T>
std::vector<T*> SsdTier::SpillArrays(int i, T* exp_avg, T* exp_avg_sq,
                                     T* master) const {
  if (!MasterSpilled(i)) return {exp_avg, exp_avg_sq};
  if (!WeightSpilled(i)) return {exp_avg, exp_avg_sq, master};
  return {exp_avg, exp_avg_sq, master, nullptr};
}

// The initial weights are drawn here one layer at a time so that they never
// all sit in host memory.
absl::Status SsdTier::Open(HostLedger* ledger) {
  if (plan_.ssd_layers <= 0 || spill_ != nullptr) return absl::OkStatus();
  std::vector<storage::SpillItem> items;
  for (int i = 1; Spilled(i); ++i) {
    const int64_t bytes = Count(i) * static_cast<int64_t>(sizeof(float));
    storage::SpillItem item{
        layouts_[i].name, {"exp_avg", "exp_avg_sq"}, {bytes, bytes}};
    if (MasterSpilled(i)) {
      item.arrays.push_back("master");
      item.array_bytes.push_back(bytes);
    }
    if (WeightSpilled(i)) {
      // Written by the trainer (HostState::RefreshWorkingCopies) before the
      // first step reads it, then by each update; never staged for one.
      item.arrays.push_back("working");
      item.array_bytes.push_back(
          Count(i) * ComputeElementBytes(config_.training.precision));
      item.staged_arrays = 3;
    }
    items.push_back(std::move(item));
  }
  storage::BlockDevice* device = options_.ssd_device;
  if (device == nullptr) {
    if (config_.offload.ssd_dirs.empty()) {
      return absl::InvalidArgumentError(
          "ssd_layers > 0 needs offload.ssd_dirs");
    }
    storage::FileBlockDeviceOptions device_options(
        config_.offload.ssd_dirs,
        storage::SpillStreamer::DeviceBytes(items, /*alignment=*/4096,
                                            /*block_bytes=*/1 << 20));
    device_options.dir_fds = options_.ssd_dir_fds;
    device_options.job_id = options_.job_id;
    ASSIGN_OR_RETURN(ssd_device_, storage::OpenFileBlockDevice(device_options));
    if (options_.wrap_ssd_device) {
      ssd_device_ = options_.wrap_ssd_device(std::move(ssd_device_));
    }
    device = ssd_device_.get();
  }
  // The staging slots (with the master or working copy where they hold it),
  // charged to the plan's host.staging.ssd and host.staging.ssd.*.
  RETURN_IF_ERROR(ledger->Charge(
      "host.staging.ssd", storage::SpillStreamer::StagingBytes(
                              items, kSsdStagingSlots, device->alignment())));
  ssd_store_ = std::make_unique<storage::ExtentStore>(
      device, storage::ExtentStoreOptions());
  ASSIGN_OR_RETURN(spill_, storage::SpillStreamer::Create(
                               ssd_store_.get(), items, {kSsdStagingSlots}));
  // One layer's staging for checkpoints and the initial values, charged to
  // host.staging.checkpoint (the planner sizes it the same way).
  const int64_t align = device->alignment();
  const int64_t padded =
      (LargestSpilled() * static_cast<int64_t>(sizeof(float)) + align - 1) /
      align * align;
  const int arrays = MasterSpilled(1) ? 3 : 2;
  RETURN_IF_ERROR(ledger->Charge("host.staging.checkpoint", arrays * padded));
  for (int k = 0; k < arrays; ++k) {
    checkpoint_staging_.emplace_back(padded, align,
                                     storage::AlignedBuffer::HugePages::kNever);
    if (checkpoint_staging_.back().data() == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot allocate ", padded, " bytes of checkpoint staging"));
    }
  }
  // Adam's moments start at 0 (AlignedBuffer zeroes them).
  const void* zeros = checkpoint_staging_[0].data();
  float* master = arrays > 2
                      ? reinterpret_cast<float*>(checkpoint_staging_[2].data())
                      : nullptr;
  for (int i = 1; Spilled(i); ++i) {
    if (MasterSpilled(i)) {
      InitBufferRange(layouts_[i], config_.model, config_.training.seed, i,
                      Begin(i), Begin(i) + Count(i), master);
    }
    RETURN_IF_ERROR(spill_->WritePadded(
        i - 1, SpillArrays<const void>(i, zeros, zeros, master)));
  }
  return absl::OkStatus();
}

absl::Status SsdTier::ReadMaster(int i, float* out) {
  return spill_->Read(i - 1, SpillArrays<void>(i, nullptr, nullptr, out));
}

absl::Status SsdTier::WriteWorking(int i, const void* working) {
  return spill_->Write(i - 1, {nullptr, nullptr, nullptr, working});
}

CheckpointBuffer SsdTier::SpilledCheckpointBuffer(int i, float* host_master) {
  CHECK(!checkpoint_staging_.empty()) << "Open() first";
  float* m = reinterpret_cast<float*>(checkpoint_staging_[0].data());
  float* v = reinterpret_cast<float*>(checkpoint_staging_[1].data());
  const int item = i - 1;
  CheckpointBuffer b{layouts_[i], nullptr, m, v,
                     /*load_moments=*/
                     [this, i, item, m, v] {
                       return spill_->ReadPadded(
                           item, SpillArrays<void>(i, m, v, nullptr));
                     },
                     /*store_moments=*/
                     [this, i, item, m, v] {
                       return spill_->WritePadded(
                           item, SpillArrays<const void>(i, m, v, nullptr));
                     }};
  if (!MasterSpilled(i)) {
    b.param = host_master;
  } else {
    float* w = reinterpret_cast<float*>(checkpoint_staging_[2].data());
    b.param = w;
    b.load_param = [this, i, item, w] {
      return spill_->ReadPadded(item,
                                SpillArrays<void>(i, nullptr, nullptr, w));
    };
    b.store_param = [this, i, item, w] {
      return spill_->WritePadded(
          item, SpillArrays<const void>(i, nullptr, nullptr, w));
    };
  }
  return b;
}

}  // namespace stronghold::core
