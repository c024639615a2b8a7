// The pieces of `strongholdctl bench` that need no daemon: options and their
// seed defaults, the arithmetic, log names and text, CSV quoting.
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "client/arg_parser.h"
#include "client/bench/log.h"
#include "client/bench/options.h"
#include "client/bench/output.h"
#include "client/bench/report.h"
#include "client/bench/runner.h"
#include "client/bench/stats.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace stronghold::client {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<BenchOptions> Parse(std::vector<std::string> args) {
  absl::StatusOr<ParsedArgs> parsed =
      ParseArgs(args, BenchFlags(), {.context = "command bench"});
  if (!parsed.ok()) return parsed.status();
  return ParseBenchOptions(*parsed);
}

TEST(BenchOptionsTest, DefaultsAreTheSeeds) {
  absl::StatusOr<BenchOptions> o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->bench_case, BenchCase::kRun);
  EXPECT_EQ(o->methods, (std::vector<v1::OffloadMethod>{v1::RESIDENT, v1::L2L,
                                                        v1::STRONGHOLD}));
  EXPECT_EQ(o->spec.model().layers(), 16);
  EXPECT_EQ(o->spec.model().hidden(), 2048);
  EXPECT_EQ(o->spec.model().heads(), 16);
  EXPECT_EQ(o->spec.model().seq_len(), 1024);
  EXPECT_EQ(o->spec.training().batch(), 4);
  EXPECT_EQ(o->spec.offload().window(), 4);
  EXPECT_EQ(o->spec.model().vocab(), 50304);
  EXPECT_EQ(o->spec.training().steps(), 5);
  EXPECT_EQ(o->out_dir, "results");
  EXPECT_TRUE(o->plot);
}

TEST(BenchOptionsTest, SweepsDefaultToStronghold) {
  for (const char* c : {"scaling", "window"}) {
    absl::StatusOr<BenchOptions> o = Parse({"--case", c});
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(o->methods, std::vector<v1::OffloadMethod>{v1::STRONGHOLD}) << c;
  }
}

TEST(BenchOptionsTest, FlagsOverride) {
  absl::StatusOr<BenchOptions> o = Parse({"--case",
                                          "scaling",
                                          "--method",
                                          "all",
                                          "--layers-list",
                                          "2,4,8",
                                          "--windows",
                                          "0,1,3",
                                          "--gpu-memory-budget",
                                          "8MiB",
                                          "--peak-tflops",
                                          "1.5",
                                          "--no-plot",
                                          "--window",
                                          "0",
                                          "--speculative-updates",
                                          "on",
                                          "--device-embedding-optimizer",
                                          "on",
                                          "--device-resident-layers",
                                          "2"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->methods.size(), 3u);
  EXPECT_EQ(o->layers_list, (std::vector<int>{2, 4, 8}));
  EXPECT_EQ(o->windows, (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(o->spec.offload().gpu_memory_budget_bytes(), 8 << 20);
  EXPECT_DOUBLE_EQ(o->peak_tflops, 1.5);
  EXPECT_FALSE(o->plot);
  EXPECT_TRUE(o->spec.offload().speculative_updates());
  EXPECT_TRUE(o->spec.offload().device_embedding_optimizer());
  EXPECT_EQ(o->spec.offload().device_resident_layers(), 2);
  // Automatic window: profiling + first iteration at the chosen window.
  EXPECT_EQ(o->WarmupIterations(/*automatic_window=*/true, 5), 2);
  EXPECT_EQ(o->WarmupIterations(/*automatic_window=*/false, 5), 1);
  // One iteration is always measured.
  EXPECT_EQ(o->WarmupIterations(/*automatic_window=*/true, 2), 1);
  EXPECT_EQ(o->WarmupIterations(/*automatic_window=*/true, 1), 0);
}

TEST(BenchOptionsTest, BadValuesNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--method", "zero"}, "--method"},
      {{"--case", "fastest"}, "--case"},
      {{"--layers", "0"}, "--layers"},
      {{"--layers-list", "2,x"}, "--layers-list"},
      {{"--peak-tflops", "-1"}, "--peak-tflops"},
      {{"--gpu-memory-budget", "lots"}, "gpu-memory-budget"},
      {{"--steps", "3", "--warmup-iterations", "3"}, "--warmup-iterations"},
      {{"--case", "window", "--method", "resident"}, "--method must be"},
      {{"--speculative-updates", "yes"}, "--speculative-updates"},
      {{"--device-embedding-optimizer", "1"}, "--device-embedding-optimizer"},
      {{"--device-resident-layers", "-1"}, "--device-resident-layers"}};
  for (const auto& [args, flag] : cases) {
    absl::StatusOr<BenchOptions> o = Parse(args);
    ASSERT_FALSE(o.ok()) << args[0];
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(flag));
  }
}

TEST(BenchOptionsTest, RanksGetDaemonsAMicroBatchEachAndARendezvous) {
  absl::StatusOr<BenchOptions> o =
      Parse({"--world-size", "2", "--daemons", "unix:/a.sock,/b.sock"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->world_size, 2);
  EXPECT_EQ(o->daemons, (std::vector<std::string>{"unix:/a.sock", "/b.sock"}));
  // The seed's batch 4: one micro-batch of 2 per rank.
  EXPECT_EQ(o->spec.training().micro_batch(), 2);
  EXPECT_EQ(o->spec.distributed().master_addr(), "127.0.0.1");
  EXPECT_EQ(o->spec.distributed().master_port(), 29500);
  EXPECT_EQ(o->spec.distributed().job_key(), "") << "one per run, later";

  o = Parse({"--world-size", "2", "--daemons", "node-0:7070,node-1:7070",
             "--master-addr", "node-0", "--master-port", "29400",
             "--micro-batch", "1"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->spec.distributed().master_addr(), "node-0");
  EXPECT_EQ(o->spec.distributed().master_port(), 29400);
  EXPECT_EQ(o->spec.training().micro_batch(), 1);

  // One rank: the --daemon's job, no distributed section is invented.
  o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->world_size, 1);
  EXPECT_TRUE(o->daemons.empty());
  EXPECT_EQ(o->spec.distributed().master_addr(), "");
}

TEST(BenchOptionsTest, BadRanksNameTheFlag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--world-size", "0", "--daemons", "a.sock"}, "--world-size"},
      {{"--world-size", "1025"}, "--world-size"},
      {{"--world-size", "2"}, "--daemons: missing"},
      {{"--world-size", "3", "--daemons", "a.sock,b.sock"},
       "--daemons: 2 address(es) for --world-size 3"},
      {{"--world-size", "2", "--daemons", "a.sock,,b.sock"}, "--daemons"},
      {{"--world-size", "2", "--daemons", "a.sock,b.sock", "--batch", "6",
        "--micro-batch", "2"},
       "--batch: 6 is not a multiple of --world-size 2 x --micro-batch 2"},
      {{"--world-size", "3", "--daemons", "a.sock,b.sock,c.sock"},
       "--batch: 4 is not a multiple of --world-size 3"},
      {{"--world-size", "2", "--daemons", "a.sock,node-1:7070"},
       "--master-addr: missing"}};
  for (const auto& [args, message] : cases) {
    absl::StatusOr<BenchOptions> o = Parse(args);
    ASSERT_FALSE(o.ok()) << message;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(message));
  }
  // The bench sets each rank and a fresh key per run itself.
  for (const char* flag : {"--rank", "--local-rank", "--job-key"}) {
    EXPECT_FALSE(Parse({flag, "1"}).ok()) << flag;
  }
}

// Speculative updates reach the windowed methods' jobs, never RESIDENT's
// (which refuses the option); off unless asked.
TEST(BenchRunnerTest, SpeculativeUpdatesGoToTheWindowedMethodsOnly) {
  absl::StatusOr<BenchOptions> plain = Parse({});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->spec.offload().speculative_updates());
  absl::StatusOr<BenchOptions> o = Parse({"--speculative-updates", "on"});
  ASSERT_TRUE(o.ok()) << o.status();
  const BenchRunner runner(*o, BenchEnvironment{});
  for (v1::OffloadMethod m : {v1::RESIDENT, v1::L2L, v1::STRONGHOLD}) {
    EXPECT_EQ(
        runner.Spec(runner.Point(m, 4, 3)).offload().speculative_updates(),
        m != v1::RESIDENT)
        << v1::OffloadMethod_Name(m);
  }
}

// The device optimizer options likewise: the embedding's for the windowed
// methods, resident layers for STRONGHOLD only (the others refuse them).
TEST(BenchRunnerTest, DeviceOptimizerOptionsGoWhereTheyApply) {
  absl::StatusOr<BenchOptions> o = Parse(
      {"--device-embedding-optimizer", "on", "--device-resident-layers", "2"});
  ASSERT_TRUE(o.ok()) << o.status();
  const BenchRunner runner(*o, BenchEnvironment{});
  for (v1::OffloadMethod m : {v1::RESIDENT, v1::L2L, v1::STRONGHOLD}) {
    const v1::OffloadSpec spec = runner.Spec(runner.Point(m, 4, 3)).offload();
    EXPECT_EQ(spec.device_embedding_optimizer(), m != v1::RESIDENT)
        << v1::OffloadMethod_Name(m);
    EXPECT_EQ(spec.device_resident_layers(), m == v1::STRONGHOLD ? 2 : 0)
        << v1::OffloadMethod_Name(m);
  }
}

v1::StepMetrics Step(int64_t step, double step_s, int batch) {
  v1::StepMetrics m;
  m.set_step(step);
  m.set_step_s(step_s);
  m.set_samples_per_s(batch / step_s);
  m.set_tokens_per_s(batch * 64 / step_s);
  m.set_model_tflops(2.0 / step_s);  // 2e12 FLOPs per iteration
  m.set_compute_s(step_s / 2);
  m.set_device_peak_bytes(step * 100);
  return m;
}

TEST(BenchStatsTest, SummaryIsWorkOverTime) {
  // 4 samples in 1 s and 4 in 3 s: 8 samples in 4 s = 2/s, not the mean of
  // the rates (2.67/s).
  const std::vector<v1::StepMetrics> steps = {Step(2, 1.0, 4), Step(3, 3.0, 4)};
  const IterationSummary s = Summarize(steps);
  EXPECT_EQ(s.iterations, 2);
  EXPECT_EQ(s.first_step, 2);
  EXPECT_EQ(s.last_step, 3);
  EXPECT_DOUBLE_EQ(s.step_s, 2.0);
  EXPECT_DOUBLE_EQ(s.min_step_s, 1.0);
  EXPECT_DOUBLE_EQ(s.max_step_s, 3.0);
  EXPECT_DOUBLE_EQ(s.samples_per_s, 2.0);
  EXPECT_DOUBLE_EQ(s.tokens_per_s, 128.0);
  EXPECT_DOUBLE_EQ(s.model_tflops, 1.0);
  EXPECT_DOUBLE_EQ(s.compute_s, 1.0);
  EXPECT_EQ(s.device_peak_bytes, 300);
  EXPECT_EQ(Summarize({}).iterations, 0);
}

TEST(BenchStatsTest, AJobOfManyRanksStepsAtItsSlowestRank) {
  // Global batch 4 on 2 ranks: each daemon reports the whole job's rate
  // over its own step time. Step 3 is rank 1's slowest, step 2 rank 0's;
  // rank 1 never reported step 4 (it failed): the job did not finish it.
  const std::vector<std::vector<v1::StepMetrics>> ranks = {
      {Step(2, 2.0, 4), Step(3, 1.0, 4), Step(4, 1.0, 4)},
      {Step(2, 1.0, 4), Step(3, 3.0, 4)}};
  const std::vector<v1::StepMetrics> job = JobSteps(ranks);
  ASSERT_EQ(job.size(), 2u);
  EXPECT_EQ(job[0].step(), 2);
  EXPECT_DOUBLE_EQ(job[0].step_s(), 2.0);
  EXPECT_EQ(job[1].step(), 3);
  EXPECT_DOUBLE_EQ(job[1].step_s(), 3.0);
  // 8 samples in 5 s for the job.
  EXPECT_DOUBLE_EQ(Summarize(job).samples_per_s, 1.6);
  // Each rank's share: 2 samples per its own iteration, 4 in 3 s and 4 in
  // 4 s.
  const IterationSummary rank0 =
      RankSummary(absl::MakeConstSpan(ranks[0]).subspan(0, 2), 2);
  EXPECT_DOUBLE_EQ(rank0.samples_per_s, 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(rank0.tokens_per_s, 64 * 4.0 / 3.0);
  EXPECT_DOUBLE_EQ(rank0.step_s, 1.5);
  EXPECT_DOUBLE_EQ(RankSummary(ranks[1], 2).samples_per_s, 1.0);
  // One rank: its own steps.
  EXPECT_EQ(JobSteps({ranks[0]}).size(), 3u);
}

TEST(BenchStatsTest, FlopsFollowTheDesign) {
  // Design §4: 72*B*s*L*h^2*(1 + s/(6h) + V/(12*L*h)), the seed's 1.717B
  // model (L=32, h=2048, V=50304, s=1024, B=4).
  const double b = 4, s = 1024, l = 32, h = 2048, v = 50304;
  EXPECT_DOUBLE_EQ(
      IterationFlops(4, 1024, 32, 2048, 50304, false),
      72 * b * s * l * h * h * (1 + s / (6 * h) + v / (12 * l * h)));
  EXPECT_DOUBLE_EQ(
      IterationFlops(4, 1024, 32, 2048, 50304, true),
      96 * b * s * l * h * h * (1 + s / (6 * h) + v / (16 * l * h)));
  // About 4/3 of the model FLOPs: the forward is done twice.
  EXPECT_NEAR(IterationFlops(4, 1024, 32, 2048, 50304, true) /
                  IterationFlops(4, 1024, 32, 2048, 50304, false),
              4.0 / 3.0, 0.02);
}

TEST(BenchStatsTest, PeakFromFlagNominalOrUnknown) {
  v1::Node node;
  node.set_device("cpu");
  node.set_cpu_threads(2);
  EXPECT_DOUBLE_EQ(ChoosePeak(0, node, /*avx512=*/false).tflops, 0.08);
  EXPECT_DOUBLE_EQ(ChoosePeak(0, node, /*avx512=*/true).tflops, 0.16);
  EXPECT_THAT(ChoosePeak(0, node, false).source, HasSubstr("nominal"));
  const DevicePeak given = ChoosePeak(1.25, node, false);
  EXPECT_DOUBLE_EQ(given.tflops, 1.25);
  EXPECT_THAT(given.source, HasSubstr("--peak-tflops"));
  node.set_device("cuda:0 (NVIDIA H100 PCIe)");
  EXPECT_DOUBLE_EQ(ChoosePeak(0, node, false).tflops, 51.0);
  node.set_device("cuda:0 (NVIDIA H100 80GB HBM3)");
  EXPECT_DOUBLE_EQ(ChoosePeak(0, node, false).tflops, 67.0);
  node.set_device("cuda:0 (Some Future GPU)");
  EXPECT_DOUBLE_EQ(ChoosePeak(0, node, false).tflops, 0.0);
  EXPECT_EQ(FormatMfu(1.0, ChoosePeak(0, node, false)), "n/a");
  EXPECT_EQ(FormatMfu(1.0, {.tflops = 4.0}), "25.00%");
}

TEST(BenchStatsTest, LinearFit) {
  absl::StatusOr<LinearFit> exact = FitLine(std::vector<double>{1, 2, 3, 4},
                                            std::vector<double>{5, 7, 9, 11});
  ASSERT_TRUE(exact.ok());
  EXPECT_DOUBLE_EQ(exact->slope, 2.0);
  EXPECT_DOUBLE_EQ(exact->intercept, 3.0);
  EXPECT_DOUBLE_EQ(exact->r2, 1.0);
  EXPECT_EQ(exact->points, 4);
  // By hand: x = 0,1,2,3; y = 0,1,3,3 -> Sxx = 5, Sxy = 5.5, Syy = 6.75:
  // slope 1.1, intercept 0.1, residuals -0.1,-0.2,0.7,-0.4 (SS 0.7).
  absl::StatusOr<LinearFit> noisy =
      FitLine(std::vector<double>{0, 1, 2, 3}, std::vector<double>{0, 1, 3, 3});
  ASSERT_TRUE(noisy.ok());
  EXPECT_NEAR(noisy->slope, 1.1, 1e-12);
  EXPECT_NEAR(noisy->intercept, 0.1, 1e-12);
  EXPECT_NEAR(noisy->r2, 1 - 0.7 / 6.75, 1e-12);
  EXPECT_FALSE(FitLine(std::vector<double>{1}, std::vector<double>{1}).ok());
  EXPECT_FALSE(
      FitLine(std::vector<double>{2, 2}, std::vector<double>{1, 3}).ok());
}

TEST(BenchLogTest, FileNameIsTheSeeds) {
  BenchOptions o;
  o.spec.mutable_model()->set_hidden(64);
  o.spec.mutable_training()->set_batch(2);
  const absl::Time time = absl::FromCivil(
      absl::CivilSecond(2024, 5, 1, 12, 34, 56), absl::LocalTimeZone());
  EXPECT_EQ(LogFileName({.method = v1::STRONGHOLD, .layers = 4, .window = 0}, o,
                        time),
            "log_stronghold_l-4_h-64_bs-2_ws-0_20240501-123456.txt");
  EXPECT_EQ(
      LogFileName({.method = v1::L2L, .layers = 78, .window = 1}, o, time),
      "log_l2l_l-78_h-64_bs-2_ws-1_20240501-123456.txt");
}

TEST(BenchLogTest, DoesNotFitIsReportedWithThePlan) {
  BenchOptions o;
  BenchRun run;
  run.point = {.method = v1::RESIDENT, .layers = 40, .window = 0, .steps = 5};
  run.outcome = RunOutcome::kDoesNotFit;
  run.plan.set_parameters(2120000000);
  run.plan.set_fits(false);
  run.plan.set_device_bytes(40LL << 30);
  run.plan.set_device_budget_bytes(32LL << 30);
  run.reason = "device memory: needs 40.0 GiB";
  BenchEnvironment env;
  env.node.set_device("cpu");
  const std::string log = FormatLog(run, o, env);
  EXPECT_THAT(log, HasSubstr("total parameters: 2120000000\n"));
  EXPECT_THAT(log, HasSubstr("plan: does not fit; device 40.0 GiB"));
  EXPECT_THAT(log, HasSubstr("of budget 32.0 GiB"));
  EXPECT_THAT(log, HasSubstr("job: none (not submitted)\n"));
  EXPECT_THAT(
      log, HasSubstr("result: DOES NOT FIT: device memory: needs 40.0 GiB\n"));
  EXPECT_THAT(log, HasSubstr("command: strongholdctl bench --method resident "
                             "--layers 40 --hidden 2048"));
}

TEST(BenchLogTest, IterationsAndSummary) {
  BenchOptions o;
  BenchRun run;
  run.point = {.method = v1::STRONGHOLD, .layers = 4, .window = 2, .steps = 3};
  run.outcome = RunOutcome::kSucceeded;
  run.warmup = {Step(1, 2.0, 4)};
  run.measured = {Step(2, 1.0, 4), Step(3, 1.0, 4)};
  run.summary = Summarize(run.measured);
  run.window_used = 2;
  BenchEnvironment env;
  env.peak = {.tflops = 4.0, .source = "4 TFLOPS from --peak-tflops"};
  const std::string log = FormatLog(run, o, env);
  EXPECT_THAT(log, HasSubstr("\nwarmup 1/3 | elapsed time per iteration (ms): "
                             "2000.000 | SamplesPerSec: 2.0000 |"));
  EXPECT_THAT(log, HasSubstr("\niteration 2/3 | elapsed time per iteration "
                             "(ms): 1000.000 | SamplesPerSec: 4.0000 |"));
  EXPECT_THAT(log,
              HasSubstr("\nsummary | iterations: 2-3 | elapsed time per "
                        "iteration (ms): 1000.000 | SamplesPerSec: 4.0000 | "
                        "tokens/s: 256.0 | model TFLOPS: 2 | MFU: 50.00% |"));
  EXPECT_THAT(log, HasSubstr("\nresult: SUCCEEDED\n"));
}

TEST(BenchReportTest, RunJsonHasTheJobsAndEachRanksFigures) {
  BenchRun run;
  run.point = {.method = v1::STRONGHOLD, .layers = 4, .window = 2, .steps = 3};
  run.spec.mutable_distributed()->set_world_size(2);
  run.outcome = RunOutcome::kSucceeded;
  run.job = "jobs/7";
  run.log_path = "results/log \"a\".txt";  // quoted in JSON
  run.measured = {Step(2, 1.0, 4), Step(3, 1.0, 4)};
  run.summary = Summarize(run.measured);
  run.ranks = {{.rank = 0, .daemon = "unix:/a.sock", .job = "jobs/7"},
               {.rank = 1, .daemon = "unix:/b.sock", .job = "jobs/2"}};
  for (RankRun& rank : run.ranks) {
    rank.summary = RankSummary(run.measured, 2);
  }
  google::protobuf::Struct json;
  const std::string text = RunJson(run, {.tflops = 4.0});
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(text, &json).ok())
      << text;
  const auto& f = json.fields();
  EXPECT_EQ(f.at("outcome").string_value(), "SUCCEEDED");
  EXPECT_EQ(f.at("log").string_value(), "results/log \"a\".txt");
  EXPECT_EQ(f.at("world_size").number_value(), 2);
  EXPECT_EQ(f.at("samples_per_s").number_value(), 4);
  EXPECT_EQ(f.at("tokens_per_s").number_value(), 256);
  EXPECT_EQ(f.at("mfu_percent").number_value(), 50);
  const auto& ranks = f.at("ranks").list_value().values();
  ASSERT_EQ(ranks.size(), 2);
  EXPECT_EQ(ranks[1].struct_value().fields().at("job").string_value(),
            "jobs/2");
  EXPECT_EQ(ranks[1].struct_value().fields().at("samples_per_s").number_value(),
            2);
  EXPECT_EQ(ranks[1].struct_value().fields().at("iteration_ms").number_value(),
            1000);

  // A run that did not succeed has no figures.
  run.outcome = RunOutcome::kFailed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  RunJson(run, {.tflops = 4.0}), &json)
                  .ok());
  EXPECT_EQ(json.fields().at("samples_per_s").kind_case(),
            google::protobuf::Value::kNullValue);
}

TEST(BenchOutputTest, CsvQuotesWhatNeedsIt) {
  Csv csv({"a", "b", "c"});
  csv.AddRow({"plain", "with, comma", "say \"hi\""});
  csv.AddRow({"short"});
  EXPECT_EQ(csv.ToString(),
            "a,b,c\nplain,\"with, comma\",\"say \"\"hi\"\"\"\nshort,,\n");
}

TEST(BenchOutputTest, CaseFilePath) {
  const absl::Time time = absl::FromCivil(
      absl::CivilSecond(2024, 5, 1, 1, 2, 3), absl::LocalTimeZone());
  EXPECT_EQ(CaseFilePath("results", "scaling_fit", time, "csv"),
            "results/bench_scaling_fit_20240501-010203.csv");
}

}  // namespace
}  // namespace stronghold::client
