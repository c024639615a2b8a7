// Each step's measured time against the job's predicted step time (issue
// 18; docs/prediction.md): says when they differ by more than a tolerance,
// rate-limited so that a job that is steadily off says so once, not every
// step. The daemon turns what it says into a line of the job's events
// (`strongholdctl watch` prints it); the prediction itself is exported as
// stronghold_job_predicted_step_seconds and alerted on by Prometheus.
//
// Rate limit: a step outside the tolerance is reported when it is the first
// one, when it is off in the other direction than the last report (slower
// after faster, or faster after slower), or when `repeat_after_steps` steps
// have passed since the last report. Steps within the tolerance report
// nothing and reset nothing. The first `skip_first_steps` steps of a run are
// not compared: they pay one-time costs the model leaves out (allocation,
// first touch of pinned memory, the automatic window's profiling step).
//
// Not thread-safe: one per run, fed from the run's thread.
#ifndef STRONGHOLD_CORE_PLAN_STEP_TIME_CHECK_H_
#define STRONGHOLD_CORE_PLAN_STEP_TIME_CHECK_H_

#include <cstdint>
#include <optional>
#include <string>

namespace stronghold::core {

struct StepTimeCheckOptions {
  // |measured / predicted - 1| above this is reported (0.25: 25%).
  double tolerance = 0.25;
  // While the difference persists in one direction, say it again after
  // this many steps.
  int64_t repeat_after_steps = 100;
  // Steps 1..skip_first_steps of a run are not compared (a resumed run
  // counts from its first step).
  int64_t skip_first_steps = 1;
  // Names the prediction's source in the line ("this node's measured
  // profile", "h200").
  std::string profile = "the node's profile";
};

class StepTimeCheck {
 public:
  // `predicted_step_s` > 0.
  StepTimeCheck(double predicted_step_s, StepTimeCheckOptions options);

  // The line to report for optimizer step `step` (1-based) that took
  // `measured_s`, or nothing. Steps are fed in order.
  std::optional<std::string> Observe(int64_t step, double measured_s);

  double predicted_step_s() const { return predicted_s_; }

 private:
  // Constant after construction (not const: a check is assigned into an
  // optional when a run starts).
  double predicted_s_;
  StepTimeCheckOptions options_;

  int64_t first_step_ = -1;    // the run's first step fed
  int last_sign_ = 0;          // +1 slower, -1 faster, 0 nothing reported
  int64_t last_reported_ = 0;  // the step of the last report
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_STEP_TIME_CHECK_H_
