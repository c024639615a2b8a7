// Who may act on a job (docs/security.md, "Authorization").
//
// Reading (GetJob, ListJobs, WatchJob, PlanJob, GetNode) is open to every
// authenticated caller; acting on a job or reading what it produced is not:
// cancelling, deleting, downloading its checkpoints (or starting another job
// from one with resume_from) and reading its trace are allowed to the job's
// owner (the principal that submitted it, Job.owner) and to admins (root and
// members of strongholdd --admin_group). Every RPC that acts on a job calls
// CheckJobAccess, through JobManager::Authorize, before it acts.
#ifndef STRONGHOLD_SERVER_AUTH_JOB_ACCESS_H_
#define STRONGHOLD_SERVER_AUTH_JOB_ACCESS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/auth/principal.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

enum class JobAction {
  kCancel,
  kDelete,
  kDownloadCheckpoint,  // DownloadCheckpoint, and resume_from in a new job
  kReadTrace,
};

// "cancel", "delete", "download the checkpoints of", "get the trace of".
absl::string_view JobActionText(JobAction action);

// OK when `principal` owns `job` (Job.owner) or is an admin. A job without an
// owner (recorded before jobs had one) is left to admins. PERMISSION_DENIED
// naming the principal, the action, the job and its owner otherwise.
absl::Status CheckJobAccess(const Principal& principal,
                            const stronghold::v1::Job& job, JobAction action);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_AUTH_JOB_ACCESS_H_
