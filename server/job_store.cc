#include "server/job_store.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"

namespace stronghold::server {

namespace fs = std::filesystem;
namespace v1 = ::stronghold::v1;

namespace {

// A deleted job's directory until its files are gone (hidden from LoadAll).
constexpr char kDetachedPrefix[] = ".del-";

}  // namespace

absl::StatusOr<int64_t> ParseJobName(const std::string& name) {
  absl::string_view id = name;
  if (id.rfind("jobs/", 0) == 0) id.remove_prefix(5);
  int64_t value = 0;
  if (id.empty() || !absl::SimpleAtoi(id, &value) || value <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "name: expected \"jobs/{id}\" with a positive id, got \"", name, "\""));
  }
  return value;
}

std::string JobName(int64_t id) { return absl::StrCat("jobs/", id); }

absl::StatusOr<JobStore> JobStore::Open(const std::string& state_dir) {
  const fs::path dir = fs::path(state_dir) / "jobs";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--state_dir: cannot create ", dir.string(), ": ", ec.message()));
  }
  return JobStore(dir.string());
}

std::string JobStore::JobDir(int64_t id) const {
  return (fs::path(jobs_dir_) / absl::StrCat(id)).string();
}

std::string JobStore::CheckpointsDir(int64_t id) const {
  return (fs::path(JobDir(id)) / "checkpoints").string();
}

std::vector<v1::Job> JobStore::LoadAll() const {
  std::vector<v1::Job> jobs;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(jobs_dir_, ec)) {
    if (entry.path().filename().string().rfind(kDetachedPrefix, 0) == 0) {
      RemoveDetached(entry.path().string());
      continue;
    }
    const fs::path record = entry.path() / "job.pb";
    if (!fs::exists(record, ec)) continue;
    absl::StatusOr<std::string> bytes = core::ReadFile(record.string());
    v1::Job job;
    if (!bytes.ok() || !job.ParseFromString(*bytes) ||
        !ParseJobName(job.name()).ok()) {
      LOG(WARNING) << "skipping unreadable job record " << record;
      continue;
    }
    jobs.push_back(std::move(job));
  }
  std::sort(jobs.begin(), jobs.end(), [](const v1::Job& a, const v1::Job& b) {
    return *ParseJobName(a.name()) < *ParseJobName(b.name());
  });
  return jobs;
}

absl::Status JobStore::Save(const v1::Job& job) {
  ASSIGN_OR_RETURN(int64_t id, ParseJobName(job.name()));
  const std::string dir = JobDir(id);
  std::error_code ec;
  if (fs::create_directories(dir, ec))
    RETURN_IF_ERROR(core::SyncDir(jobs_dir_));
  return core::WriteFileAtomically((fs::path(dir) / "job.pb").string(),
                                   job.SerializeAsString());
}

absl::StatusOr<std::string> JobStore::Detach(int64_t id) {
  const std::string detached =
      (fs::path(jobs_dir_) / absl::StrCat(kDetachedPrefix, id)).string();
  std::error_code ec;
  fs::remove_all(detached, ec);  // an earlier detach that was not removed
  fs::rename(JobDir(id), detached, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot delete ", JobDir(id), ": ", ec.message()));
  }
  RETURN_IF_ERROR(core::SyncDir(jobs_dir_));
  return detached;
}

void JobStore::RemoveDetached(const std::string& detached_dir) {
  std::error_code ec;
  fs::remove_all(detached_dir, ec);
  if (ec)
    LOG(WARNING) << "cannot remove " << detached_dir << ": " << ec.message();
}

}  // namespace stronghold::server
