#include "client/bench/output.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace stronghold::client {
namespace {

namespace fs = std::filesystem;

std::string CsvCell(const std::string& cell) {
  if (cell.find_first_of(",\"\r\n") == std::string::npos) return cell;
  std::string quoted = "\"";
  for (char c : cell) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

bool IsFile(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string DefaultPython() {
  return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

// Runs argv[0] (searched in PATH) with stdout and stderr captured together.
// Returns the exit status (as from waitpid) and the output.
absl::StatusOr<std::pair<int, std::string>> RunCaptured(
    const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  std::vector<char*> argv;
  for (const std::string& arg : args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned =
      posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (spawned != 0) {
    close(pipe_fds[0]);
    return absl::NotFoundError(
        absl::StrCat("cannot run ", args[0], ": ", std::strerror(spawned)));
  }
  std::string output;
  char buffer[4096];
  while (true) {
    const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n > 0) {
      output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return absl::InternalError(
          absl::StrCat("waitpid: ", std::strerror(errno)));
    }
  }
  return std::make_pair(status, output);
}

}  // namespace

Csv::Csv(std::vector<std::string> header) : header_(std::move(header)) {}

void Csv::AddRow(std::vector<std::string> cells) {
  cells.resize(header_.size());
  rows_.push_back(std::move(cells));
}

std::string Csv::ToString() const {
  auto join = [](const std::vector<std::string>& cells) {
    std::vector<std::string> quoted;
    for (const std::string& cell : cells) quoted.push_back(CsvCell(cell));
    return absl::StrCat(absl::StrJoin(quoted, ","), "\n");
  };
  std::string text = join(header_);
  for (const auto& row : rows_) text += join(row);
  return text;
}

absl::Status EnsureDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  return absl::OkStatus();
}

std::string CaseFilePath(const std::string& dir, absl::string_view name,
                         absl::Time time, absl::string_view extension) {
  return (fs::path(dir) / absl::StrCat("bench_", name, "_",
                                       absl::FormatTime("%Y%m%d-%H%M%S", time,
                                                        absl::LocalTimeZone()),
                                       ".", extension))
      .string();
}

absl::StatusOr<std::string> FindPlotScript(const BenchOptions& options) {
  if (!options.plot_script.empty()) {
    if (!IsFile(options.plot_script)) {
      return absl::NotFoundError(
          absl::StrCat("--plot-script: no file ", options.plot_script));
    }
    return options.plot_script;
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // `bazel build` puts the script in the binary's runfiles (client/BUILD).
    candidates.push_back(fs::path(exe.string() + ".runfiles") /
                         "stronghold/deploy/bench/plot.py");
    candidates.push_back(exe.parent_path().parent_path() /
                         "share/stronghold/bench/plot.py");
  }
  candidates.push_back(fs::current_path(ec) / "deploy/bench/plot.py");
  std::vector<std::string> tried;
  for (const fs::path& path : candidates) {
    if (IsFile(path)) return path.string();
    tried.push_back(path.string());
  }
  return absl::NotFoundError(absl::StrCat(
      "the plotting script plot.py is not in any of ",
      absl::StrJoin(tried, ", "), "; pass --plot-script or --no-plot"));
}

namespace {

// Runs the script with `args` after it; `png`, when not empty, must exist
// afterwards.
absl::Status RunScript(const BenchOptions& options,
                       const std::vector<std::string>& script_args,
                       const std::string& png) {
  absl::StatusOr<std::string> script = FindPlotScript(options);
  if (!script.ok()) return script.status();
  const std::string python =
      options.python.empty() ? DefaultPython() : options.python;
  std::vector<std::string> args = {python, *script};
  args.insert(args.end(), script_args.begin(), script_args.end());
  constexpr absl::string_view kAdvice =
      "\nInstall matplotlib (Debian: apt-get install python3-matplotlib), name "
      "an interpreter that has it with --python, or pass --no-plot.";
  absl::StatusOr<std::pair<int, std::string>> result = RunCaptured(args);
  if (!result.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(result.status().message(), kAdvice));
  }
  const auto& [status, output] = *result;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
      (png.empty() || IsFile(png))) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      absl::StrJoin(args, " "), " failed (",
      WIFEXITED(status) ? absl::StrCat("exit code ", WEXITSTATUS(status))
                        : "killed by a signal",
      "): ", absl::StripTrailingAsciiWhitespace(output), kAdvice));
}

}  // namespace

absl::Status CheckPlotter(const BenchOptions& options) {
  return RunScript(options, {"--check"}, "");
}

absl::Status Plot(const BenchOptions& options, absl::string_view case_name,
                  const std::string& png,
                  const std::vector<std::string>& csvs) {
  std::vector<std::string> args = {std::string(case_name), png};
  args.insert(args.end(), csvs.begin(), csvs.end());
  return RunScript(options, args, png);
}

}  // namespace stronghold::client
