// What the cases of `strongholdctl bench` share when they report: the cells
// of a run in tables and CSV files, and writing a case's CSV files and plot.
#ifndef STRONGHOLD_CLIENT_BENCH_REPORT_H_
#define STRONGHOLD_CLIENT_BENCH_REPORT_H_

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/bench/output.h"
#include "client/bench/runner.h"

namespace stronghold::client {

// Model size the way the seed's tables write it: "1.717 B", "12.345 M".
std::string SizeText(int64_t parameters);

// "0.6647" for a run that succeeded, else its outcome ("DOES NOT FIT").
std::string SamplesText(const BenchRun& run);
// "5985.2" (ms) for a run that succeeded, else "-".
std::string IterationMsText(const BenchRun& run);
// With many ranks, each rank's share in rank order: "3.1250 / 3.1102"
// samples/s and "640.0 / 643.1" ms per iteration; "-" unless it succeeded.
std::string RankSamplesText(const BenchRun& run);
std::string RankIterationMsText(const BenchRun& run);
// "12800.0" (the whole job's tokens/s) for a run that succeeded, else "-".
std::string TokensText(const BenchRun& run);

// With many ranks (--world-size), a table's columns of the whole job's
// tokens/s and each rank's share, and a run's cells in them; nothing for
// one rank, whose tables stay the seed's.
void AppendRankColumns(const BenchOptions& o, std::vector<std::string>& header);
void AppendRankCells(const BenchRun& run, const BenchOptions& o,
                     std::vector<std::string>& row);

// "DOES NOT FIT: device memory: needs ..." or "SUCCEEDED".
std::string ResultText(const BenchRun& run);

// The CSV columns of a run (every case's CSV ends with them) and its cells;
// the figures are empty unless it succeeded. The figures are the whole
// job's; with many ranks, rank_samples_per_s and rank_iteration_ms give
// each rank's share, ';'-separated in rank order.
std::vector<std::string> RunCsvHeader();
std::vector<std::string> RunCsvCells(const BenchRun& run,
                                     const DevicePeak& peak);

// A run as one line of JSON (`bench --output json` prints one per run as
// it ends): the point, outcome, job and log, the whole job's figures (null
// unless it succeeded), and with many ranks each rank's job and share.
std::string RunJson(const BenchRun& run, const DevicePeak& peak);

// A CSV of a case, written as bench_<name><suffix>_<time>.csv.
struct CaseCsv {
  std::string suffix;  // "" or e.g. "_fit"
  Csv csv;
};

// Writes the case's CSV files, then (unless --no-plot) its PNG from all of
// them, and prints where they went. A plot that fails is an error after the
// CSV files are written.
absl::Status WriteCaseFiles(const BenchRunner& runner, absl::string_view name,
                            absl::Time time, const std::vector<CaseCsv>& csvs,
                            std::ostream& out);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_REPORT_H_
