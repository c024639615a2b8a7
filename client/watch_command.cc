// `watch JOB`: follows a job's events until it ends. The exit code says how
// it ended (0 only for SUCCEEDED) so scripts can `strongholdctl watch 7 &&
// strongholdctl fetch 7 --out DIR`.
#include <algorithm>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/human_format.h"
#include "client/job_printer.h"
#include "client/json_output.h"
#include "client/terminal_text.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

// What the stream told us about the job's end.
struct Outcome {
  std::optional<v1::Job::State> final_state;
  std::string error;  // the job's error, from the last event's snapshot
};

// On a terminal, one line that rewrites itself:
//   step 12/30 [#######---------]  40%  ETA 0:00:35  loss 3.4521  12.3
//   samples/s  MFU 1.2%  W 2
// Other events print above it.
class ProgressLine {
 public:
  void Update(const v1::StepMetrics& m, int64_t total_steps) {
    // The ETA follows an average of recent step times.
    step_s_ = step_s_ == 0 ? m.step_s() : 0.8 * step_s_ + 0.2 * m.step_s();
    const double fraction =
        total_steps > 0 ? static_cast<double>(m.step()) / total_steps : 0;
    constexpr int kWidth = 20;
    const int filled = static_cast<int>(fraction * kWidth);
    const int64_t eta = static_cast<int64_t>(
        step_s_ * std::max<int64_t>(0, total_steps - m.step()));
    line_ = absl::StrFormat(
        "step %d/%d [%s%s] %3.0f%%  ETA %d:%02d:%02d  loss %.4f  %.1f "
        "samples/s",
        m.step(), total_steps, std::string(filled, '#'),
        std::string(kWidth - filled, '-'), 100 * fraction, eta / 3600,
        eta / 60 % 60, eta % 60, m.loss(), m.samples_per_s());
    if (m.mfu() > 0)
      absl::StrAppend(&line_, absl::StrFormat("  MFU %.1f%%", 100 * m.mfu()));
    if (m.window() > 0) absl::StrAppend(&line_, "  W ", m.window());
  }
  void Draw(std::ostream& out) const {
    if (!line_.empty()) out << "\r\x1b[K" << line_;
  }
  void Print(const std::string& text, std::ostream& out) const {
    out << "\r\x1b[K" << text << "\n";
    Draw(out);
  }
  void Finish(std::ostream& out) const {
    if (!line_.empty()) out << "\n";
  }

 private:
  double step_s_ = 0;
  std::string line_;
};

absl::Status PrintEvent(const v1::JobEvent& event, int64_t total_steps,
                        const CommandContext& context, ProgressLine* progress) {
  if (context.output == OutputFormat::kTable && context.interactive) {
    if (event.kind_case() == v1::JobEvent::kMetrics) {
      progress->Update(event.metrics(), total_steps);
      progress->Draw(*context.out);
    } else {
      const std::string line = FormatEvent(event, total_steps);
      if (!line.empty()) progress->Print(line, *context.out);
    }
  } else if (context.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(const std::string json,
                     MessageToJson(event, /*multiline=*/false));
    *context.out << json << "\n";
  } else {
    const std::string line = FormatEvent(event, total_steps);
    if (!line.empty()) *context.out << line << "\n";
  }
  context.out->flush();  // a pipe must see each step as it happens
  return absl::OkStatus();
}

// Decides the exit code from the job's final state, reporting failures.
int Finish(const std::string& name, v1::Job::State state,
           const std::string& error, const CommandContext& context) {
  if (state == v1::Job::SUCCEEDED) return 0;
  *context.err << "strongholdctl: " << name << " " << StateName(state);
  if (!error.empty()) *context.err << ": " << TerminalSafe(error);
  *context.err << "\n";
  return 1;
}

}  // namespace

absl::StatusOr<int> FollowJob(const std::string& name, int64_t since_step,
                              CommandContext& context) {
  // The events' job snapshots carry no spec, so the step total comes from
  // here; this also turns an unknown job into NOT_FOUND before streaming.
  ASSIGN_OR_RETURN(const v1::Job initial, context.client->GetJob(name));
  const int64_t total_steps = initial.spec().training().steps();

  v1::WatchJobRequest request;
  request.set_name(name);
  request.set_since_step(since_step);
  Outcome outcome;
  ProgressLine progress;
  const absl::Status stream_status = context.client->WatchJob(
      request, [&](const v1::JobEvent& event) -> absl::Status {
        RETURN_IF_ERROR(PrintEvent(event, total_steps, context, &progress));
        if (event.has_job()) outcome.error = event.job().error();
        if (event.kind_case() == v1::JobEvent::kState &&
            IsTerminal(event.state())) {
          outcome.final_state = event.state();
        } else if (event.has_job() && IsTerminal(event.job().state())) {
          outcome.final_state = event.job().state();
        }
        return absl::OkStatus();
      });
  if (context.interactive && context.output == OutputFormat::kTable)
    progress.Finish(*context.out);

  if (outcome.final_state.has_value() &&
      (*outcome.final_state == v1::Job::SUCCEEDED || !outcome.error.empty())) {
    return Finish(name, *outcome.final_state, outcome.error, context);
  }
  // The stream ended without a final state (or without the error of one):
  // the job itself decides.
  absl::StatusOr<v1::Job> job = context.client->GetJob(name);
  if (job.ok() && IsTerminal(job->state())) {
    if (!outcome.final_state.has_value() &&
        context.output == OutputFormat::kTable) {
      *context.out << "state " << StateName(job->state()) << "\n";
    }
    return Finish(name, job->state(), job->error(), context);
  }
  if (outcome.final_state.has_value()) {
    return Finish(name, *outcome.final_state, outcome.error, context);
  }
  if (!stream_status.ok()) return stream_status;
  if (!job.ok()) return job.status();
  *context.err << "strongholdctl: the event stream of " << name
               << " ended while the job is " << StateName(job->state()) << "\n";
  return 1;
}

Command WatchCommand() {
  return {
      .name = "watch",
      .args_usage = "JOB",
      .summary = "follow a job until it ends; exit 0 only if it succeeded",
      .positional_args = 1,
      .flags = {{"since-step", "N",
                 "replay recorded metrics after step N (default 0: all)"}},
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(std::string name, JobName(args.positional()[0]));
        int64_t since_step = 0;
        if (std::optional<std::string> text = args.Get("since-step")) {
          if (!absl::SimpleAtoi(*text, &since_step) || since_step < 0) {
            return absl::InvalidArgumentError(
                absl::StrCat("--since-step: invalid value \"", *text,
                             "\" (expected a non-negative integer)"));
          }
        }
        return [name, since_step](CommandContext& context) {
          return FollowJob(name, since_step, context);
        };
      },
  };
}

}  // namespace stronghold::client
