#include "server/job_recovery.h"

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/checkpoint.h"
#include "glog/logging.h"

namespace stronghold::server {

namespace v1 = ::stronghold::v1;

JobRecovery RecoverJob(v1::Job& job, const std::string& checkpoints_dir,
                       int max_restarts) {
  if (absl::StatusOr<int> removed =
          core::RemoveIncompleteCheckpoints(checkpoints_dir);
      !removed.ok()) {
    LOG(WARNING) << job.name() << ": " << removed.status();
  } else if (*removed > 0) {
    LOG(INFO) << job.name() << ": removed " << *removed
              << " incomplete checkpoint(s)";
  }
  const std::vector<std::string> present =
      core::ListCheckpoints(checkpoints_dir);
  job.clear_checkpoints();
  for (const std::string& c : present) job.add_checkpoints(c);

  JobRecovery out;
  if (job.state() != v1::Job::QUEUED && job.state() != v1::Job::RUNNING) {
    return out;
  }
  const bool was_running = job.state() == v1::Job::RUNNING;
  if (was_running) job.set_daemon_stops(job.daemon_stops() + 1);
  if (was_running && job.daemon_stops() > max_restarts) {
    out.action = JobRecovery::Action::kFail;
    out.error = absl::StrCat("the daemon stopped ", job.daemon_stops(),
                             " times while running this job");
    out.note = absl::StrCat(out.error, "; not resumed again (at most ",
                            max_restarts, " restart(s): --max_job_restarts)");
    return out;
  }
  if (was_running && job.spec().distributed().world_size() > 1) {
    // The other ranks failed the job when this daemon went silent (their
    // watchdogs, docs/distributed.md): run alone it could only wait for
    // them, holding this daemon's worker for the collective timeout.
    out.action = JobRecovery::Action::kFail;
    out.error = absl::StrCat(
        "the daemon stopped while this rank ran (rank ",
        job.spec().distributed().rank(), " of ",
        job.spec().distributed().world_size(),
        "); the other ranks failed the job: resubmit every rank with "
        "--resume-from");
    out.note = absl::StrCat(out.error, "; newest checkpoint: ",
                            present.empty() ? "none" : present.back());
    return out;
  }
  std::string from = "step 0";
  job.set_step(0);
  if (!present.empty()) {
    from = absl::StrCat("checkpoint ", present.back());
    job.set_step(core::CheckpointStep(present.back()).value_or(0));
  } else if (!job.spec().resume_from().empty()) {
    from = job.spec().resume_from();
  }
  out.action = JobRecovery::Action::kRequeue;
  out.note = absl::StrCat(was_running ? "daemon restarted while this job ran"
                                      : "daemon restarted; job queued again",
                          "; it will resume from ", from);
  return out;
}

}  // namespace stronghold::server
