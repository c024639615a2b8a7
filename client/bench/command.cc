// `bench`: parses the options, checks what a long run would only discover at
// its end (the plotter), picks the device peak and hands over to the cases.
#include "client/bench/command.h"

#include <unistd.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/bench/cases.h"
#include "client/bench/options.h"
#include "client/bench/output.h"
#include "client/bench/runner.h"
#include "client/bench/stats.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

// The client can only tell the CPU features of its own host; the daemon's
// is the one that runs the jobs.
bool DaemonHasAvx512(const v1::Node& node) {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return false;
  return node.hostname() == host && __builtin_cpu_supports("avx512f");
}

absl::StatusOr<int> Bench(const BenchOptions& options,
                          CommandContext& context) {
  if (options.plot && options.bench_case != BenchCase::kRun) {
    RETURN_IF_ERROR(CheckPlotter(options));
  }
  // --daemons: one client per rank, rank 0's first; else the --daemon's.
  std::vector<std::unique_ptr<DaemonClient>> owned;
  std::vector<DaemonClient*> ranks;
  for (const std::string& address : options.daemons) {
    ASSIGN_OR_RETURN(std::unique_ptr<DaemonClient> daemon,
                     context.connect(address));
    ranks.push_back(daemon.get());
    owned.push_back(std::move(daemon));
  }
  DaemonClient* client = ranks.empty() ? context.client : ranks.front();
  if (options.world_size == 1) ranks.clear();
  for (size_t r = 1; r < ranks.size(); ++r) {
    // Every rank's daemon must answer before the first job is submitted.
    absl::StatusOr<v1::Node> node = ranks[r]->GetNode();
    if (!node.ok()) {
      return absl::Status(
          node.status().code(),
          absl::StrCat("rank ", r, "'s daemon ", ranks[r]->address(), ": ",
                       node.status().message()));
    }
  }
  ASSIGN_OR_RETURN(const v1::Node node, client->GetNode());
  DevicePeak peak =
      ChoosePeak(options.peak_tflops, node, DaemonHasAvx512(node));
  if (options.world_size > 1) {
    // The job computes on one device per rank: MFU is the whole job's
    // FLOP/s over all of them (as the daemons report it).
    peak.tflops *= options.world_size;
    peak.source = absl::StrCat(options.world_size, " ranks x ", peak.source);
  }
  BenchEnvironment environment{
      .client = client,
      .ranks = ranks,
      .node = node,
      .peak = std::move(peak),
      .out_dir = options.out_dir,
      .progress = context.out,
  };
  if (context.output == OutputFormat::kJson) {
    // Standard output is for the runs' JSON lines; what people read goes
    // to standard error.
    environment.progress = context.err;
    environment.json = context.out;
  }
  std::ostream& out = *environment.progress;
  out << "bench " << BenchCaseName(options.bench_case) << " on "
      << node.device() << " (" << node.hostname() << ")";
  if (options.world_size > 1) {
    out << " and " << options.world_size - 1 << " more rank(s) ("
        << absl::StrJoin(options.daemons, ", ") << ")";
  }
  out << "; device peak " << environment.peak.source << "\n";
  if (node.queued_jobs() > 0 || !node.running_job().empty()) {
    *context.err << "strongholdctl: note: the daemon has other jobs ("
                 << node.queued_jobs() << " queued"
                 << (node.running_job().empty()
                         ? ""
                         : ", " + node.running_job() + " running")
                 << "); benchmark jobs wait for them and run alone\n";
  }
  BenchRunner runner(options, std::move(environment));
  return RunBench(runner, out, *context.err);
}

}  // namespace

Command BenchCommand() {
  return {
      .name = "bench",
      .summary =
          "benchmark the methods like the seed's run.sh and cases: logs, CSV, "
          "plots",
      .flags = BenchFlags(),
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        ASSIGN_OR_RETURN(BenchOptions options, ParseBenchOptions(args));
        return [options](CommandContext& context) {
          return Bench(options, context);
        };
      },
  };
}

}  // namespace stronghold::client
