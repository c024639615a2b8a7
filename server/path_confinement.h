// The daemon's policy for the paths a job spec names (issue 15): its token
// file (data.source, unless "builtin"; for a Megatron index "PREFIX.idx",
// also "PREFIX.bin" beside it) must be a regular file inside one of the
// data roots (--data_root), the model directory it starts from (init_from)
// a directory inside one of them, each of its NVMe tier directories
// (offload.ssd_dirs) a directory inside one of the ssd roots (--ssd_root).
// Resolution is core/util/confined_path.h's: beneath a root's descriptor,
// opened at start-up; no "..", no symlink followed; a relative path is
// relative to the roots, never to the daemon's working directory.
//
// What a client is told: whatever went wrong (outside every root, not
// found, not readable by the daemon, a symlink on the way, not a regular
// file / directory), one PERMISSION_DENIED naming the field and the roots,
// the same text whatever the path, so that nothing about a path the client
// named is revealed (whether it exists, its size, its contents). The reason
// goes to the daemon's log for the operator. Once opened, the file is the
// operator's data: later errors (a bad token id, a size) may describe it.
//
// Without any data root only "builtin" data is accepted; without any ssd
// root there is no NVMe tier (a spec with offload.ssd_dirs is refused).
// Safe by default: a daemon started without flags reads and writes nothing
// a client names.
//
// What is opened is handed on as descriptors (JobFiles), so a path is never
// looked up by name again after the check.
//
// Thread safety: const methods may be called concurrently.
#ifndef STRONGHOLD_SERVER_PATH_CONFINEMENT_H_
#define STRONGHOLD_SERVER_PATH_CONFINEMENT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/plan/job_config.h"
#include "core/util/confined_path.h"
#include "core/util/unique_fd.h"

namespace stronghold::server {

struct PathRootsOptions {
  // Absolute paths of existing directories; a path inside one is accepted
  // for data.source. Empty = only "builtin" data.
  std::vector<std::string> data_roots;
  // The same for offload.ssd_dirs. Empty = no NVMe tier.
  std::vector<std::string> ssd_roots;
  // How paths are resolved (tests force the walk); kAuto in the daemon.
  core::BeneathMethod method = core::BeneathMethod::kAuto;
};

// A job's files, opened inside the roots.
struct JobFiles {
  core::UniqueFd data;      // the token file or index; invalid for "builtin"
  std::string data_path;    // as opened: the root joined with the path under it
  core::UniqueFd data_bin;  // an index's .bin (core/data/dataset.h), else -1
  std::vector<core::UniqueFd> ssd_dirs;  // offload.ssd_dirs, in order
  std::vector<std::string> ssd_dir_paths;

  std::vector<int> SsdDirFds() const;
  // `config` with its paths as opened (root-joined): names for messages.
  core::JobConfig Named(core::JobConfig config) const;
};

class PathConfinement {
 public:
  PathConfinement() = default;  // no roots
  PathConfinement(PathConfinement&&) = default;
  PathConfinement& operator=(PathConfinement&&) = default;

  // Opens the roots. INVALID_ARGUMENT naming the flag (--data_root or
  // --ssd_root) and the root for one that is not an absolute path of a
  // directory.
  static absl::StatusOr<PathConfinement> Open(const PathRootsOptions& options);

  // Opens data.source and offload.ssd_dirs of `config` inside the roots;
  // PERMISSION_DENIED naming the field and the roots, as above.
  absl::StatusOr<JobFiles> OpenJobFiles(const core::JobConfig& config) const;

  // Opens JobSpec.init_from, a model directory inside the data roots (its
  // files are then opened beneath it: core/hf/hf_import.h);
  // PERMISSION_DENIED naming init_from and the roots, as above.
  absl::StatusOr<core::ConfinedRoots::Opened> OpenModelDir(
      const std::string& init_from) const;

  // Removes the tier directories that processes killed with a job running
  // left under the ssd roots (storage/tier_dir.h; none of this daemon's jobs
  // runs yet at start-up, and those of live processes are left alone).
  // Returns how many; logs each root's count.
  int RemoveStaleTierDirs() const;

  const core::ConfinedRoots& data_roots() const { return data_roots_; }
  const core::ConfinedRoots& ssd_roots() const { return ssd_roots_; }

 private:
  core::ConfinedRoots data_roots_;
  core::ConfinedRoots ssd_roots_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_PATH_CONFINEMENT_H_
