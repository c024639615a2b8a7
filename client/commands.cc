#include "client/commands.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "client/bench/command.h"
#include "client/job_printer.h"
#include "client/job_spec_flags.h"
#include "client/json_output.h"
#include "client/plan_printer.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

// Parses a non-negative int flag; `fallback` when absent.
absl::StatusOr<int32_t> IntFlag(const ParsedArgs& args, absl::string_view name,
                                int32_t fallback) {
  std::optional<std::string> text = args.Get(name);
  if (!text.has_value()) return fallback;
  int32_t value = 0;
  if (!absl::SimpleAtoi(*text, &value) || value < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": invalid value \"", *text,
                     "\" (expected a non-negative integer)"));
  }
  return value;
}

std::vector<FlagSpec> SubmitFlags() {
  std::vector<FlagSpec> flags = JobSpecFlags();
  flags.push_back({"wait", "",
                   "follow the job as `watch` does and exit with its outcome "
                   "(0 only when it succeeded)"});
  return flags;
}

Command SubmitCommand() {
  return {
      .name = "submit",
      .summary = "validate, plan and queue a training job",
      .flags = SubmitFlags(),
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(v1::JobSpec spec, BuildJobSpec(args));
        const bool wait = args.Has("wait");
        return [spec, wait](CommandContext& context) -> absl::StatusOr<int> {
          ASSIGN_OR_RETURN(const v1::Job job, context.client->SubmitJob(spec));
          RETURN_IF_ERROR(PrintResult(
              job, context, [&](std::ostream& out) { PrintJob(job, out); }));
          if (!wait) return 0;
          // As `watch` does: exit 0 only when the job SUCCEEDED.
          return FollowJob(job.name(), /*since_step=*/0, context);
        };
      },
  };
}

Command StatusCommand() {
  return {
      .name = "status",
      .args_usage = "JOB",
      .summary = "show a job",
      .positional_args = 1,
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(std::string name, JobName(args.positional()[0]));
        return [name](CommandContext& context) -> absl::StatusOr<int> {
          ASSIGN_OR_RETURN(const v1::Job job, context.client->GetJob(name));
          RETURN_IF_ERROR(PrintResult(
              job, context, [&](std::ostream& out) { PrintJob(job, out); }));
          return 0;
        };
      },
  };
}

// Prints {"jobs":[...]}: the jobs of every page, without a page token.
absl::Status PrintJobsJson(const std::vector<v1::Job>& jobs,
                           std::ostream& out) {
  std::string json = "{\n  \"jobs\": [";
  for (size_t i = 0; i < jobs.size(); ++i) {
    ASSIGN_OR_RETURN(const std::string job, MessageToJson(jobs[i], true));
    absl::StrAppend(&json, i == 0 ? "\n    " : ",\n    ",
                    absl::StrReplaceAll(job, {{"\n", "\n    "}}));
  }
  absl::StrAppend(&json, jobs.empty() ? "]\n}" : "\n  ]\n}");
  out << json << "\n";
  return absl::OkStatus();
}

Command ListCommand() {
  return {
      .name = "list",
      .summary = "list jobs, newest first",
      .flags = {{"limit", "N", "show at most N jobs; 0 = all"},
                {"page-size", "N", "jobs per request; 0 = the daemon's"}},
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(const int32_t limit, IntFlag(args, "limit", 0));
        ASSIGN_OR_RETURN(const int32_t page_size,
                         IntFlag(args, "page-size", 0));
        return [=](CommandContext& context) -> absl::StatusOr<int> {
          std::vector<v1::Job> jobs;
          v1::ListJobsRequest request;
          request.set_page_size(page_size);
          do {
            ASSIGN_OR_RETURN(const v1::ListJobsResponse page,
                             context.client->ListJobs(request));
            jobs.insert(jobs.end(), page.jobs().begin(), page.jobs().end());
            request.set_page_token(page.next_page_token());
          } while (!request.page_token().empty() &&
                   (limit == 0 || jobs.size() < static_cast<size_t>(limit)));
          if (limit > 0 && jobs.size() > static_cast<size_t>(limit)) {
            jobs.resize(limit);
          }
          if (context.output == OutputFormat::kJson) {
            RETURN_IF_ERROR(PrintJobsJson(jobs, *context.out));
          } else {
            PrintJobTable(jobs, *context.out);
          }
          return 0;
        };
      },
  };
}

Command CancelCommand() {
  return {
      .name = "cancel",
      .args_usage = "JOB",
      .summary = "cancel a queued or running job",
      .positional_args = 1,
      .flags = {{"checkpoint", "",
                 "a running job finishes its step and writes a checkpoint "
                 "first (continue it with submit --resume-from JOB)"}},
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(std::string name, JobName(args.positional()[0]));
        const bool checkpoint = args.Has("checkpoint");
        return
            [name, checkpoint](CommandContext& context) -> absl::StatusOr<int> {
              ASSIGN_OR_RETURN(const v1::Job job,
                               context.client->CancelJob(name, checkpoint));
              RETURN_IF_ERROR(PrintResult(job, context, [&](std::ostream& out) {
                out << job.name() << " " << v1::Job::State_Name(job.state());
                if (checkpoint && job.checkpoints_size() > 0) {
                  out << ", checkpoint "
                      << job.checkpoints(job.checkpoints_size() - 1);
                }
                out << "\n";
              }));
              return 0;
            };
      },
  };
}

Command DeleteCommand() {
  return {
      .name = "delete",
      .args_usage = "JOB",
      .summary = "delete an ended job: its record and checkpoints",
      .positional_args = 1,
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(std::string name, JobName(args.positional()[0]));
        return [name](CommandContext& context) -> absl::StatusOr<int> {
          RETURN_IF_ERROR(context.client->DeleteJob(name));
          if (context.output == OutputFormat::kJson) {
            *context.out << "{\"name\": \"" << name
                         << "\", \"deleted\": true}\n";
          } else {
            *context.out << name << " deleted\n";
          }
          return 0;
        };
      },
  };
}

Command NodeCommand() {
  return {
      .name = "node",
      .summary =
          "show the node: device, memory tiers, versions, measured profile",
      .flags = {{"remeasure", "",
                 "measure the node's hardware profile again (no job may be "
                 "running)"}},
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        const bool remeasure = args.Has("remeasure");
        return [remeasure](CommandContext& context) -> absl::StatusOr<int> {
          ASSIGN_OR_RETURN(const v1::Node node,
                           context.client->GetNode(remeasure));
          RETURN_IF_ERROR(PrintResult(
              node, context, [&](std::ostream& out) { PrintNode(node, out); }));
          return 0;
        };
      },
  };
}

Command TraceCommand() {
  return {
      .name = "trace",
      .args_usage = "JOB",
      .summary =
          "save a recent step's timeline as Chrome trace JSON (open in "
          "Perfetto)",
      .positional_args = 1,
      .flags = {{"out", "FILE", "file to write (required)"}},
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(std::string name, JobName(args.positional()[0]));
        const std::string out_path = args.Get("out").value_or("");
        if (out_path.empty())
          return absl::InvalidArgumentError("--out: required");
        return
            [name, out_path](CommandContext& context) -> absl::StatusOr<int> {
              ASSIGN_OR_RETURN(const v1::JobTrace trace,
                               context.client->GetJobTrace(name));
              RETURN_IF_ERROR(core::WriteFileAtomically(
                  out_path, trace.chrome_trace_json()));
              *context.out << "wrote the timeline of step " << trace.step()
                           << " of " << name << " to " << out_path << " ("
                           << trace.chrome_trace_json().size()
                           << " bytes); open it in https://ui.perfetto.dev\n";
              return 0;
            };
      },
  };
}

}  // namespace

const std::vector<Command>& AllCommands() {
  static const auto* commands = new std::vector<Command>{
      SubmitCommand(), StatusCommand(), ListCommand(),  CancelCommand(),
      DeleteCommand(), WatchCommand(),  FetchCommand(), PlanCommand(),
      NodeCommand(),   TraceCommand(),  BenchCommand(),
  };
  return *commands;
}

absl::StatusOr<std::string> JobName(absl::string_view arg) {
  absl::string_view id = arg;
  absl::ConsumePrefix(&id, "jobs/");
  if (id.empty() || absl::StrContains(id, '/')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "JOB must be a job id such as 7 or jobs/7, not \"", arg, "\""));
  }
  return absl::StrCat("jobs/", id);
}

absl::Status PrintResult(
    const google::protobuf::Message& message, const CommandContext& context,
    const std::function<void(std::ostream&)>& print_table) {
  if (context.output == OutputFormat::kJson) {
    ASSIGN_OR_RETURN(const std::string json,
                     MessageToJson(message, /*multiline=*/true));
    *context.out << json << "\n";
  } else {
    print_table(*context.out);
  }
  return absl::OkStatus();
}

}  // namespace stronghold::client
