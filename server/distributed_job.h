// A job with distributed.world_size > 1, as its JobRunner runs it
// (docs/distributed.md): the rendezvous with the other ranks' daemons
// (core/dist/rendezvous.h), the watchdog that keeps them together
// (core/dist/job_control.h), and the trainer observer that turns the job
// manager's stop requests into requests for every rank and the ranks'
// decisions back into the trainer's.
//
// JobRunner::TrainDistributed (distributed_job.cc) is the one place where a
// distributed job, after a successful rendezvous, creates its communicator
// and trainer: CreateDistributedTrainer below.
#ifndef STRONGHOLD_SERVER_DISTRIBUTED_JOB_H_
#define STRONGHOLD_SERVER_DISTRIBUTED_JOB_H_

#include <optional>
#include <string>
#include <vector>

#include "core/dist/job_control.h"
#include "core/dist/rendezvous.h"
#include "core/train/trainer.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// The fields every rank of a job must agree on, named as in the API
// ("training.lr"), in the proto's order: the whole effective spec but for
// what differs by rank or by daemon (distributed.rank, distributed.
// local_rank, resume_from, which names a job of each rank's own daemon) and
// the job key (which already decides who meets whom).
std::vector<core::dist::SpecField> RankInvariantFields(
    const stronghold::v1::JobSpec& spec);

// The trainer's observer for one rank: steps, notes and checkpoints go to
// `inner` (the job's recorder); stops are decided with the other ranks.
//   - a local cancel (strongholdctl cancel) cancels every rank;
//   - a local shutdown (SIGTERM) or cancel --checkpoint asks every rank to
//     stop at a common step with a checkpoint;
//   - another rank's failure, cancel or silence stops this one at once.
class DistributedObserver final : public core::TrainerObserver {
 public:
  DistributedObserver(core::TrainerObserver& inner,
                      core::dist::JobControl& control);

  void OnStep(const core::StepMetrics& metrics) override;
  void OnMessage(const std::string& message) override;
  void OnCheckpoint(const std::string& name) override;
  void OnTrace(int64_t step, const std::string& chrome_trace_json) override;
  core::StopRequest StopRequested() override;

  // The decision that stopped the job with a checkpoint, if one did.
  std::optional<core::dist::StopDecision> stop() const { return stop_; }

 private:
  core::TrainerObserver& inner_;
  core::dist::JobControl& control_;
  // Set by OnStep: the trainer's next StopRequested() is the step's end.
  std::optional<int64_t> step_ended_;
  std::optional<core::dist::StopDecision> stop_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_DISTRIBUTED_JOB_H_
