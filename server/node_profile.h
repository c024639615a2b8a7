// The node's own hardware profile (core/plan/hardware_profile.h), which
// `plan --predict` uses when no profile is named and GetNode shows. It is
// measured once (core/profile/measure.h: copies, the optimizer pool, a
// probe block; well under a second on a quiet 2-core machine; and, with
// --ssd_root, the NVMe tier's bandwidth, core/profile/measure_nvme.h), on a
// thread of its own so that start-up does not wait for it, and cached in the
// state directory
// (node_profile.json, written atomically: tmp + fsync + rename); a later
// start reads the cache instead, and a cache that does not parse or
// validate is measured again, never trusted; a cache without NVMe figures
// gets them measured when the daemon now has NVMe roots. A job's layer shape is
// measured the first time a plan asks for it and added to the cache.
// Remeasure() measures everything again.
//
// Thread-safe.
#ifndef STRONGHOLD_SERVER_NODE_PROFILE_H_
#define STRONGHOLD_SERVER_NODE_PROFILE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/device/device.h"
#include "core/plan/hardware_profile.h"
#include "core/plan/job_config.h"
#include "core/profile/measure.h"
#include "core/profile/measure_nvme.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

struct NodeProfileOptions {
  std::string cache_path;  // required: <state_dir>/node_profile.json
  // The compute device jobs run on (a GPU); null = the host device, a
  // fresh one per measurement.
  std::shared_ptr<core::Device> device;
  core::MeasureOptions measure;
  // The NVMe tier's directories (the daemon's --ssd_root) and pass size;
  // no directory = the NVMe figures stay MeasureOptions' placeholders and
  // say so.
  core::NvmeMeasureOptions nvme;
};

class NodeProfile {
 public:
  // Reads the cache, or starts measuring in the background (and then
  // writes the cache; a cache that cannot be written is logged).
  static std::unique_ptr<NodeProfile> Create(NodeProfileOptions options);
  ~NodeProfile();

  // The profile with `config`'s layer shape measured (once per shape; a
  // failed measurement is logged and the compute curve used instead).
  // Waits for the start-up measurement; its error if it failed.
  absl::StatusOr<core::HardwareProfile> ForJob(const core::JobConfig& config)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Measures again, layer shapes dropped. At most once per
  // kRemeasureInterval (any caller may ask: RESOURCE_EXHAUSTED sooner).
  absl::Status Remeasure() ABSL_LOCKS_EXCLUDED(mu_);
  static constexpr absl::Duration kRemeasureInterval = absl::Seconds(10);
  // What GetNode shows (error: "measuring" while the start-up measurement
  // runs, or why it failed).
  stronghold::v1::NodeProfile ToProto() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  explicit NodeProfile(NodeProfileOptions options)
      : options_(std::move(options)) {}
  absl::StatusOr<core::HardwareProfile> Measure() const;
  // Starts the start-up measurement on measuring_: everything, or with
  // `cached` (a cache without NVMe figures) only the NVMe tier.
  void MeasureInBackground(std::optional<core::HardwareProfile> cached);
  // Sets the NVMe figures of `profile` and their sources (measured, or
  // why not: no roots, or the measurement's error, logged).
  void MeasureNvmeInto(core::HardwareProfile& profile) const;
  // Whether `profile`'s NVMe figures were measured (a cache from a daemon
  // without roots, or an older version, has placeholders).
  static bool NvmeMeasured(const core::HardwareProfile& profile);
  void SaveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  core::Device& DeviceFor(std::unique_ptr<core::Device>& owned) const;

  // Constant after construction.
  const NodeProfileOptions options_;

  mutable absl::Mutex mu_;
  core::HardwareProfile profile_ ABSL_GUARDED_BY(mu_);
  bool from_cache_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;  // profile_ or error_ is set
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  absl::Time measured_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::thread measuring_;
  // Serialises measurements (they would disturb each other).
  absl::Mutex measure_mu_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_NODE_PROFILE_H_
