// Files that `strongholdctl bench` writes besides the per-run logs: the CSV of
// a case and its PNG plot, drawn by deploy/bench/plot.py (matplotlib), which
// runs as a child process so that the client links no plotting library.
#ifndef STRONGHOLD_CLIENT_BENCH_OUTPUT_H_
#define STRONGHOLD_CLIENT_BENCH_OUTPUT_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/bench/options.h"

namespace stronghold::client {

// RFC 4180 CSV: cells holding a comma, quote or line break are quoted.
class Csv {
 public:
  explicit Csv(std::vector<std::string> header);
  // Missing cells are written empty.
  void AddRow(std::vector<std::string> cells);
  std::string ToString() const;

 private:
  const std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Creates `dir` and its parents if missing.
absl::Status EnsureDir(const std::string& dir);

// "<dir>/bench_<name>_<YYYYmmdd-HHMMSS>.<extension>".
std::string CaseFilePath(const std::string& dir, absl::string_view name,
                         absl::Time time, absl::string_view extension);

// The plotting script: --plot-script; else deploy/bench/plot.py in the
// binary's Bazel runfiles, in <prefix>/share/stronghold/bench/ beside an
// installed bin/, or under the current directory. NOT_FOUND lists the places.
absl::StatusOr<std::string> FindPlotScript(const BenchOptions& options);

// Runs `PYTHON SCRIPT --check`, which imports matplotlib, so that a case
// fails before its runs rather than after them. Same errors as Plot().
absl::Status CheckPlotter(const BenchOptions& options);

// Runs `PYTHON SCRIPT CASE PNG CSV...`. On failure the error carries the
// script's output (e.g. "No module named 'matplotlib'") and says how to get
// it working.
absl::Status Plot(const BenchOptions& options, absl::string_view case_name,
                  const std::string& png, const std::vector<std::string>& csvs);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_OUTPUT_H_
