// Durable job records: one file per job, <state_dir>/jobs/<id>/job.pb (a
// serialized stronghold.v1.Job), replaced atomically (write, fsync, rename,
// fsync the directory), so a crash leaves either the old or the new record.
// The job's checkpoints live beside it in <state_dir>/jobs/<id>/checkpoints/.
//
// Thread safety: not thread-safe; JobManager serializes calls.
#ifndef STRONGHOLD_SERVER_JOB_STORE_H_
#define STRONGHOLD_SERVER_JOB_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

class JobStore {
 public:
  // Creates <state_dir>/jobs if needed.
  static absl::StatusOr<JobStore> Open(const std::string& state_dir);

  // Every stored job, in id order. A record that cannot be parsed is
  // skipped with a warning (and left on disk for inspection); leftovers of
  // interrupted deletes are removed.
  std::vector<stronghold::v1::Job> LoadAll() const;

  absl::Status Save(const stronghold::v1::Job& job);

  // Deletes job `id`'s record and files in two steps, so that the lock the
  // caller holds is not held while gigabytes of checkpoints are unlinked:
  // Detach renames <state_dir>/jobs/<id> to a hidden name and makes the
  // rename durable (from then on the job is gone, after a crash too);
  // RemoveDetached removes what was renamed. A start removes hidden
  // leftovers of a RemoveDetached that a crash interrupted (LoadAll).
  absl::StatusOr<std::string> Detach(int64_t id);
  static void RemoveDetached(const std::string& detached_dir);

  // <state_dir>/jobs/<id>
  std::string JobDir(int64_t id) const;
  // <state_dir>/jobs/<id>/checkpoints
  std::string CheckpointsDir(int64_t id) const;

 private:
  explicit JobStore(std::string jobs_dir) : jobs_dir_(std::move(jobs_dir)) {}
  std::string jobs_dir_;
};

// "jobs/17" -> 17; INVALID_ARGUMENT for anything else. Accepts "17" too.
absl::StatusOr<int64_t> ParseJobName(const std::string& name);
std::string JobName(int64_t id);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_STORE_H_
