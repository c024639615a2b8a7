// The node's measured hardware profile (server/node_profile.h).
#include "server/node_profile.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/device/host_device.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;

// The host device a measurement copies through, when jobs get their own.
constexpr int64_t kHostDeviceBytes = int64_t{256} << 20;
constexpr int64_t kMaxCacheBytes = int64_t{1} << 20;

}  // namespace

std::unique_ptr<NodeProfile> NodeProfile::Create(NodeProfileOptions options) {
  std::unique_ptr<NodeProfile> p(new NodeProfile(std::move(options)));
  const std::string& path = p->options_.cache_path;
  absl::StatusOr<int64_t> size = core::FileSize(path);
  if (size.ok()) {
    absl::StatusOr<std::string> text =
        *size <= kMaxCacheBytes
            ? core::ReadFile(path)
            : absl::StatusOr<std::string>(absl::DataLossError("too large"));
    absl::StatusOr<core::HardwareProfile> cached =
        text.ok() ? core::ParseHardwareProfile(*text)
                  : absl::StatusOr<core::HardwareProfile>(text.status());
    if (cached.ok() &&
        (NvmeMeasured(*cached) || p->options_.nvme.dirs.empty())) {
      absl::MutexLock lock(&p->mu_);
      p->profile_ = *std::move(cached);
      p->from_cache_ = true;
      p->ready_ = true;
      return p;
    }
    if (cached.ok()) {
      // The roots are new to this profile: measure the NVMe tier only.
      p->MeasureInBackground(*std::move(cached));
      return p;
    }
    LOG(WARNING) << "node profile cache " << path
                 << " is not usable, measuring again: " << cached.status();
  }
  p->MeasureInBackground(std::nullopt);
  return p;
}

void NodeProfile::MeasureInBackground(
    std::optional<core::HardwareProfile> cached) {
  measuring_ = std::thread([this, cached = std::move(cached)]() mutable {
    absl::MutexLock measuring(&measure_mu_);
    const bool nvme_only = cached.has_value();
    absl::StatusOr<core::HardwareProfile> measured;
    if (nvme_only) {
      MeasureNvmeInto(*cached);
      measured = *std::move(cached);
    } else {
      measured = Measure();
    }
    absl::MutexLock lock(&mu_);
    if (nvme_only) {
      from_cache_ = true;
    } else {
      measured_at_ = absl::Now();
    }
    if (measured.ok()) {
      profile_ = *std::move(measured);
      SaveLocked();
      LOG(INFO) << "node profile measured: H2D " << profile_.h2d_gbps
                << " GB/s, CPU AdamW " << profile_.cpu_adamw_gbps
                << " GB/s, NVMe read " << profile_.nvme_read_gbps << " / write "
                << profile_.nvme_write_gbps << " GB/s ("
                << profile_.sources["nvme_read_gbps"] << "); cached in "
                << options_.cache_path;
    } else {
      error_ = measured.status();
      LOG(WARNING) << error_;
    }
    ready_ = true;
  });
}

NodeProfile::~NodeProfile() {
  if (measuring_.joinable()) measuring_.join();
}

core::Device& NodeProfile::DeviceFor(
    std::unique_ptr<core::Device>& owned) const {
  if (options_.device != nullptr) return *options_.device;
  owned = std::make_unique<core::HostDevice>(kHostDeviceBytes);
  return *owned;
}

absl::StatusOr<core::HardwareProfile> NodeProfile::Measure() const {
  std::unique_ptr<core::Device> owned;
  core::Device& device = DeviceFor(owned);
  absl::StatusOr<core::HardwareProfile> p =
      core::MeasureNodeProfile(device, options_.measure);
  if (!p.ok()) {
    return absl::InternalError(
        absl::StrCat("measuring the node's profile: ", p.status().message()));
  }
  MeasureNvmeInto(*p);
  return p;
}

bool NodeProfile::NvmeMeasured(const core::HardwareProfile& profile) {
  const auto it = profile.sources.find("nvme_read_gbps");
  return it != profile.sources.end() &&
         absl::StartsWith(it->second, "measured");
}

void NodeProfile::MeasureNvmeInto(core::HardwareProfile& profile) const {
  if (options_.nvme.dirs.empty()) {
    for (const char* figure : {"nvme_read_gbps", "nvme_write_gbps"}) {
      profile.sources[figure] =
          "not measured: the daemon has no --ssd_root (a placeholder)";
    }
    return;
  }
  absl::StatusOr<core::NvmeFigures> nvme = core::MeasureNvme(options_.nvme);
  if (!nvme.ok()) {
    LOG(WARNING) << nvme.status();
    for (const char* figure : {"nvme_read_gbps", "nvme_write_gbps"}) {
      profile.sources[figure] = absl::StrCat("not measured (a placeholder): ",
                                             nvme.status().message());
    }
    return;
  }
  profile.nvme_read_gbps = nvme->read_gbps;
  profile.nvme_write_gbps = nvme->write_gbps;
  profile.sources["nvme_read_gbps"] = nvme->source;
  profile.sources["nvme_write_gbps"] = nvme->source;
}

void NodeProfile::SaveLocked() {
  const absl::Status saved = core::WriteFileAtomically(
      options_.cache_path, core::HardwareProfileToJson(profile_));
  if (!saved.ok()) {
    LOG(WARNING) << "node profile not cached: " << saved;
  }
}

absl::StatusOr<core::HardwareProfile> NodeProfile::ForJob(
    const core::JobConfig& config) {
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&ready_));
    RETURN_IF_ERROR(error_);
    absl::StatusOr<core::LayerCost> cost =
        core::LayerComputeCost(profile_, config);
    if (cost.ok() && cost->measured) return profile_;
  }
  absl::MutexLock measuring(&measure_mu_);
  std::unique_ptr<core::Device> owned;
  absl::StatusOr<core::LayerTiming> layer =
      core::MeasureLayer(DeviceFor(owned), config);
  absl::MutexLock lock(&mu_);
  if (!layer.ok()) {
    LOG(WARNING) << "measuring the layer shape of a job failed, predicting "
                    "from the compute curve: "
                 << layer.status();
    return profile_;
  }
  if (profile_.layer_timings.size() < 256) {
    profile_.layer_timings.push_back(*layer);
    SaveLocked();
  }
  core::HardwareProfile p = profile_;
  if (p.layer_timings.back().hidden != layer->hidden)
    p.layer_timings.push_back(*layer);  // the cache was full
  return p;
}

absl::Status NodeProfile::Remeasure() {
  {
    absl::MutexLock lock(&mu_);
    const absl::Duration since = absl::Now() - measured_at_;
    if (since < kRemeasureInterval) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the node's profile was measured ", absl::FormatDuration(since),
          " ago; at most once per ", absl::FormatDuration(kRemeasureInterval)));
    }
    measured_at_ = absl::Now();
  }
  absl::MutexLock measuring(&measure_mu_);
  ASSIGN_OR_RETURN(core::HardwareProfile measured, Measure());
  absl::MutexLock lock(&mu_);
  profile_ = std::move(measured);
  from_cache_ = false;
  error_ = absl::OkStatus();
  ready_ = true;
  SaveLocked();
  return absl::OkStatus();
}

v1::NodeProfile NodeProfile::ToProto() const {
  absl::MutexLock lock(&mu_);
  v1::NodeProfile out;
  if (!ready_) {
    out.set_error("measuring (started with the daemon)");
    return out;
  }
  if (!error_.ok()) {
    out.set_error(std::string(error_.message()));
    return out;
  }
  const core::HardwareProfile& p = profile_;
  out.set_from_cache(from_cache_);
  out.set_h2d_gbps(p.h2d_gbps);
  out.set_d2h_gbps(p.d2h_gbps);
  out.set_copy_latency_s(p.copy_latency_s);
  out.set_cpu_adamw_gbps(p.cpu_adamw_gbps);
  out.set_cpu_copy_gbps(p.cpu_copy_gbps);
  out.set_cpu_single_thread_gbps(p.cpu_single_thread_gbps);
  out.set_cpu_threads(static_cast<int>(p.cpu_threads));
  for (const core::DeviceCompute& c : p.compute) {
    if (c.precision == core::Precision::kFp32 && !c.achieved.empty())
      out.set_fp32_probe_tflops(c.achieved[0].tflops);
  }
  out.set_layer_shapes(static_cast<int>(p.layer_timings.size()));
  out.set_nvme_read_gbps(p.nvme_read_gbps);
  out.set_nvme_write_gbps(p.nvme_write_gbps);
  if (const auto it = p.sources.find("nvme_read_gbps"); it != p.sources.end())
    out.set_nvme_source(it->second);
  out.set_json(core::HardwareProfileToJson(p));
  return out;
}

}  // namespace stronghold::server
