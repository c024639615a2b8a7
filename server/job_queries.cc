// JobManager's read side: a job's record (Get, List), who may act on it
// (Authorize), its events as they come (Follow, Watch), and what it left to
// read (CheckpointPath, Trace). Nothing here changes a job; beside
// job_manager.cc, which owns the queue and the state machine.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/checkpoint/checkpoint.h"
#include "core/hf/hf_export.h"
#include "core/hf/hf_import.h"
#include "core/util/status_macros.h"
#include "server/job_manager.h"
#include "server/job_store.h"

namespace stronghold::server {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;

absl::StatusOr<v1::Job> JobManager::Get(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  return r->job;
}

absl::Status JobManager::Authorize(const std::string& name,
                                   const Principal& principal,
                                   JobAction action) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  return CheckJobAccess(principal, r->job, action);
}

absl::StatusOr<v1::ListJobsResponse> JobManager::List(
    int page_size, const std::string& token) {
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, 1000], got ", page_size));
  }
  if (page_size == 0) page_size = 50;
  int64_t below = INT64_MAX;
  if (!token.empty() && (!absl::SimpleAtoi(token, &below) || below <= 0)) {
    return absl::InvalidArgumentError(
        "page_token: not a token returned by ListJobs");
  }
  absl::MutexLock lock(&mu_);
  v1::ListJobsResponse out;
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it) {
    if (it->first >= below) continue;
    if (out.jobs_size() == page_size) {
      out.set_next_page_token(
          absl::StrCat(out.jobs(out.jobs_size() - 1).name().substr(5)));
      break;
    }
    *out.add_jobs() = it->second.job;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<JobWatch>> JobManager::Follow(
    const std::string& name, int64_t since_step, const std::string& principal,
    std::function<void()> wake) {
  int64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Record * r, FindLocked(name));
    id = *ParseJobName(r->job.name());
  }
  ASSIGN_OR_RETURN(StreamSlots::Slot slot, watch_slots_.Acquire(principal));
  return std::unique_ptr<JobWatch>(new JobWatch(
      std::move(slot), events_.Follow(id, since_step, std::move(wake))));
}

absl::Status JobManager::Watch(
    const std::string& name, int64_t since_step,
    const std::function<bool(const v1::JobEvent&)>& emit,
    const std::function<bool()>& cancelled, const std::string& principal) {
  absl::Mutex mu;
  absl::CondVar cv;
  bool woken = false;
  ASSIGN_OR_RETURN(std::unique_ptr<JobWatch> watch,
                   Follow(name, since_step, principal, [&] {
                     absl::MutexLock lock(&mu);
                     woken = true;
                     cv.Signal();
                   }));
  while (true) {
    std::vector<v1::JobEvent> batch;
    const bool finished = watch->Read(&batch);
    for (const v1::JobEvent& e : batch) {
      if (!emit(e)) return absl::OkStatus();
    }
    if (finished) return absl::OkStatus();
    if (cancelled())
      return absl::CancelledError("watch cancelled by the client");
    absl::MutexLock lock(&mu);
    if (!woken) cv.WaitWithTimeout(&mu, absl::Milliseconds(100));
    woken = false;
  }
}

absl::StatusOr<std::string> JobManager::CheckpointPath(
    const std::string& name, const std::string& checkpoint,
    const std::string& file, const std::string& format) {
  if (!format.empty() && format != "hf") {
    return absl::InvalidArgumentError(absl::StrCat(
        "format: must be empty (the checkpoint's files) or \"hf\", got \"",
        format, "\""));
  }
  const bool hf = format == "hf";
  const std::string f =
      !file.empty() ? file : (hf ? core::kHfIndexFile : core::kModelFile);
  for (const std::string* part : {&checkpoint, &f}) {
    if (part->find('/') != std::string::npos || *part == ".." || *part == ".") {
      return absl::InvalidArgumentError(
          absl::StrCat(part == &f ? "file" : "checkpoint",
                       ": must be a plain name, got \"", *part, "\""));
    }
  }
  std::string chosen = checkpoint;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(Record * r, FindLocked(name));
    if (chosen.empty()) {
      if (r->job.checkpoints_size() == 0) {
        return absl::NotFoundError(
            absl::StrCat("job ", r->job.name(), " has no checkpoint yet"));
      }
      chosen = r->job.checkpoints(r->job.checkpoints_size() - 1);
    }
  }
  ASSIGN_OR_RETURN(int64_t id, ParseJobName(name));
  fs::path dir = fs::path(store_.CheckpointsDir(id)) / chosen;
  if (hf) {
    RETURN_IF_ERROR(core::EnsureHfExport(dir.string()).status());
    dir /= core::kHfExportDir;
  }
  const fs::path path = dir / f;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return absl::NotFoundError(absl::StrCat("no file ", f, " in checkpoint ",
                                            chosen, " of ", JobName(id)));
  }
  return path.string();
}

absl::StatusOr<v1::JobTrace> JobManager::Trace(const std::string& name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Record * r, FindLocked(name));
  if (r->trace.chrome_trace_json().empty()) {
    return absl::NotFoundError(
        absl::StrCat("job ", r->job.name(),
                     " has no trace yet (traces are recorded by the L2L and "
                     "STRONGHOLD methods once a step has run)"));
  }
  return r->trace;
}

}  // namespace stronghold::server
