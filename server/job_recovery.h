// What a daemon start does with each job record it finds in the state
// directory (after Shutdown() or a crash): bring the record up to date with
// the job's checkpoints directory, and decide whether the job is queued
// again, failed, or left as it is. The job manager applies the decision
// (JobManager::Create).
//
// A job found RUNNING was running when the daemon died: a kill, a crash, or
// the kernel's OOM killer because of that very job. Each such stop is
// counted in Job.daemon_stops, which is durable because the RUNNING state
// is recorded before a job runs; past JobRecoveryOptions::max_restarts the
// job is failed instead of resumed, so one job cannot crash-loop the daemon
// (and every other job with it) forever. A RUNNING rank of a job on many
// daemons (distributed.world_size > 1) is failed at once: the other ranks
// failed the job when this daemon went silent, so it could only wait for
// them. A QUEUED one (a shutdown's stop step: docs/distributed.md) is
// queued again to meet them.
// Plain functions: no locks; the only I/O is on the checkpoints directory.
#ifndef STRONGHOLD_SERVER_JOB_RECOVERY_H_
#define STRONGHOLD_SERVER_JOB_RECOVERY_H_

#include <string>

#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

struct JobRecovery {
  enum class Action {
    kKeep,     // it had ended: nothing changes
    kRequeue,  // queue it again; it resumes from its newest checkpoint
    kFail,     // the daemon stopped too often while it ran
  };
  Action action = Action::kKeep;
  std::string note;   // for the job's events (kRequeue, kFail)
  std::string error;  // kFail: the job's error
};

// Removes leftovers of interrupted checkpoint writes from `checkpoints_dir`
// and sets job.checkpoints from what is there (a crash may have come
// between a checkpoint and the record's update: the directory is the
// truth). For a QUEUED or RUNNING job: sets job.step to the step it will
// resume after; for a RUNNING one, counts the stop in job.daemon_stops and
// returns kFail with "the daemon stopped N times while running this job"
// once N exceeds `max_restarts` (>= 0). The caller records the new state.
JobRecovery RecoverJob(stronghold::v1::Job& job,
                       const std::string& checkpoints_dir, int max_restarts);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_RECOVERY_H_
