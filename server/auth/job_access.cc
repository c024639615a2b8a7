#include "server/auth/job_access.h"

#include "absl/strings/str_cat.h"

namespace stronghold::server {

absl::string_view JobActionText(JobAction action) {
  switch (action) {
    case JobAction::kCancel:
      return "cancel";
    case JobAction::kDelete:
      return "delete";
    case JobAction::kDownloadCheckpoint:
      return "download the checkpoints of";
    case JobAction::kReadTrace:
      return "get the trace of";
  }
  return "act on";
}

absl::Status CheckJobAccess(const Principal& principal,
                            const stronghold::v1::Job& job, JobAction action) {
  if (principal.admin) return absl::OkStatus();
  // An empty name is never an identified caller; it must not match the
  // empty owner of a job recorded before jobs had owners.
  if (!principal.name.empty() && principal.name == job.owner())
    return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      principal.name, " may not ", JobActionText(action), " ", job.name(),
      ", which ",
      job.owner().empty() ? "has no recorded owner"
                          : absl::StrCat("belongs to ", job.owner()),
      ": only a job's owner, root and members of the daemon's admin group "
      "may"));
}

}  // namespace stronghold::server
