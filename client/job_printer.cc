#include "client/job_printer.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/human_format.h"
#include "client/plan_printer.h"
#include "client/table.h"
#include "client/terminal_text.h"

namespace stronghold::client {
namespace {

std::string StepText(const v1::Job& job) {
  const int32_t total = job.spec().training().steps();
  return total > 0 ? absl::StrCat(job.step(), "/", total)
                   : absl::StrCat(job.step());
}

// The loss means nothing before the first step.
std::string LossText(const v1::Job& job) {
  return job.step() > 0 ? absl::StrFormat("%.4f", job.last_loss()) : "-";
}

// Only the fields the spec sets: unset ones mean "the daemon's default".
std::string ModelText(const v1::ModelSpec& model) {
  std::vector<std::string> parts;
  if (model.has_layers())
    parts.push_back(absl::StrCat(model.layers(), " layers"));
  if (model.has_hidden())
    parts.push_back(absl::StrCat("hidden ", model.hidden()));
  if (model.has_heads()) parts.push_back(absl::StrCat(model.heads(), " heads"));
  if (model.has_seq_len())
    parts.push_back(absl::StrCat("seq ", model.seq_len()));
  if (model.has_vocab()) parts.push_back(absl::StrCat("vocab ", model.vocab()));
  return parts.empty() ? "defaults" : absl::StrJoin(parts, ", ");
}

std::string OffloadText(const v1::OffloadSpec& offload) {
  std::string text = offload.method() == v1::OFFLOAD_METHOD_UNSPECIFIED
                         ? "default"
                         : v1::OffloadMethod_Name(offload.method());
  if (offload.window() > 0)
    absl::StrAppend(&text, ", window ", offload.window());
  if (!offload.ssd_dirs().empty()) {
    absl::StrAppend(&text, ", ssd ", absl::StrJoin(offload.ssd_dirs(), ","));
  }
  return text;
}

}  // namespace

void PrintJob(const v1::Job& job, std::ostream& out) {
  KeyValues rows = {
      {"name", job.name()},
      {"display name", job.display_name().empty() ? "-" : job.display_name()},
      {"owner", job.owner().empty() ? "-" : job.owner()},
      {"state", StateName(job.state())},
      {"step", StepText(job)},
      {"last loss", LossText(job)},
  };
  if (job.has_last_metrics() && job.last_metrics().step() > 0) {
    rows.push_back(
        {"last metrics",
         FormatMetrics(job.last_metrics(), job.spec().training().steps())});
  }
  if (!job.error().empty()) rows.push_back({"error", job.error()});
  if (job.parameters() > 0) {
    rows.push_back({"parameters", absl::StrCat(HumanCount(job.parameters()),
                                               " (", job.parameters(), ")")});
  }
  if (job.has_spec()) {
    rows.push_back({"model", ModelText(job.spec().model())});
    rows.push_back({"offload", OffloadText(job.spec().offload())});
    if (job.has_plan()) rows.push_back({"runs as", RunsAsText(job.plan())});
    if (!job.spec().data().source().empty()) {
      rows.push_back({"data", job.spec().data().source()});
    }
    if (!job.spec().resume_from().empty()) {
      rows.push_back({"resumed from", job.spec().resume_from()});
    }
    if (const v1::DistributedSpec& d = job.spec().distributed();
        d.world_size() > 1) {
      // Never the job key (the daemon sends it redacted anyway).
      rows.push_back(
          {"ranks",
           absl::StrCat("rank ", d.rank(), " of ", d.world_size(),
                        " (local rank ", d.local_rank(), "), rendezvous ",
                        d.master_addr(), ":", d.master_port(), ", timeout ",
                        d.collective_timeout_s(), " s")});
    }
  }
  rows.push_back({"created", FormatTimestamp(job.create_time())});
  rows.push_back({"started", FormatTimestamp(job.start_time())});
  rows.push_back({"ended", FormatTimestamp(job.end_time())});
  rows.push_back({"checkpoints", job.checkpoints().empty()
                                     ? "-"
                                     : absl::StrJoin(job.checkpoints(), ", ")});
  PrintKeyValues(rows, out);
}

void PrintJobTable(absl::Span<const v1::Job> jobs, std::ostream& out) {
  Table table({"NAME", "DISPLAY NAME", "STATE", "STEP", "LOSS", "CREATED"},
              /*right_aligned_columns=*/{3, 4});
  for (const v1::Job& job : jobs) {
    table.AddRow({job.name(), job.display_name(), StateName(job.state()),
                  StepText(job), LossText(job),
                  FormatTimestamp(job.create_time())});
  }
  table.Print(out);
}

std::string FormatMetrics(const v1::StepMetrics& metrics, int64_t total_steps) {
  std::string step = absl::StrCat(metrics.step());
  if (total_steps > 0) absl::StrAppend(&step, "/", total_steps);
  std::string text = absl::StrFormat(
      "step %s loss %.4f lr %.2e %.1f samples/s %.0f tok/s step %.2fs", step,
      metrics.loss(), metrics.lr(), metrics.samples_per_s(),
      metrics.tokens_per_s(), metrics.step_s());
  // FP16 only (FP32/BF16 report 1; older daemons 0).
  if (metrics.loss_scale() != 0 && metrics.loss_scale() != 1) {
    absl::StrAppend(&text,
                    absl::StrFormat(" loss scale %g", metrics.loss_scale()));
  }
  if (metrics.skipped()) absl::StrAppend(&text, " (skipped: fp16 overflow)");
  if (metrics.rolled_back())
    absl::StrAppend(&text, " (speculative updates redone)");
  return text;
}

std::string FormatEvent(const v1::JobEvent& event, int64_t total_steps) {
  switch (event.kind_case()) {
    case v1::JobEvent::kState:
      return absl::StrCat("state ", StateName(event.state()));
    case v1::JobEvent::kMetrics:
      return FormatMetrics(event.metrics(), total_steps);
    case v1::JobEvent::kMessage:
      return TerminalSafe(event.message());
    case v1::JobEvent::KIND_NOT_SET:
      break;
  }
  return "";
}

}  // namespace stronghold::client
