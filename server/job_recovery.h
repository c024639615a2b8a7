// What a daemon start does with each job record it finds in the state
// directory (after Shutdown() or a crash): bring the record up to date with
// the job's checkpoints directory, and decide whether the job is queued
// again or left as it is. The job manager applies the decision
// (JobManager::Create).
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
  };
  Action action = Action::kKeep;
  std::string note;  // for the job's events (kRequeue)
};

// Removes leftovers of interrupted checkpoint writes from `checkpoints_dir`
// and sets job.checkpoints from what is there (a crash may have come
// between a checkpoint and the record's update: the directory is the
// truth). For a QUEUED or RUNNING job: sets job.step to the step it will
// resume after and returns kRequeue. The caller records the new state.
JobRecovery RecoverJob(stronghold::v1::Job& job,
                       const std::string& checkpoints_dir);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_JOB_RECOVERY_H_
