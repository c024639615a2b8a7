#include "server/path_confinement.h"

#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/data/dataset.h"
#include "glog/logging.h"
#include "storage/tier_dir.h"

namespace stronghold::server {
namespace {

// The roots of one field, for its refusals.
struct RootKind {
  const char* flag;
  const char* entry;    // what the field must name
  const char* without;  // what a daemon without such a root does not accept
};
constexpr RootKind kDataRoot{
    "--data_root", "a readable regular file",
    "token files are disabled (only \"builtin\" data)"};
// For an index: the refusal names what must be there without saying which
// of the two files was missing (nothing about either is revealed).
constexpr RootKind kIndexRoot{
    "--data_root", "a readable regular file (and its .bin beside it)",
    "token files are disabled (only \"builtin\" data)"};
constexpr RootKind kModelRoot{"--data_root", "a directory",
                              "model directories are disabled"};
constexpr RootKind kSsdRoot{"--ssd_root", "a directory",
                            "the NVMe tier is disabled"};

// The one answer a client gets for a path it may not use: the same text
// whatever the path and whatever the reason.
absl::Status Refused(absl::string_view field, const RootKind& kind,
                     const core::ConfinedRoots& roots) {
  if (roots.empty()) {
    return absl::PermissionDeniedError(absl::StrCat(
        field, ": ", kind.without, ": the daemon has no ", kind.flag));
  }
  return absl::PermissionDeniedError(
      absl::StrCat(field, ": must name ", kind.entry, " inside the daemon's ",
                   kind.flag, " (", roots.Describe(),
                   "), relative to it or absolute, without '..' or symlinks"));
}

}  // namespace

std::vector<int> JobFiles::SsdDirFds() const {
  std::vector<int> fds;
  for (const core::UniqueFd& fd : ssd_dirs) fds.push_back(fd.get());
  return fds;
}

core::JobConfig JobFiles::Named(core::JobConfig config) const {
  if (data.valid()) config.data.source = data_path;
  config.offload.ssd_dirs = ssd_dir_paths;
  return config;
}

absl::StatusOr<PathConfinement> PathConfinement::Open(
    const PathRootsOptions& options) {
  PathConfinement out;
  for (auto [kind, paths, roots] :
       {std::tuple{&kDataRoot, &options.data_roots, &out.data_roots_},
        std::tuple{&kSsdRoot, &options.ssd_roots, &out.ssd_roots_}}) {
    absl::StatusOr<core::ConfinedRoots> opened =
        core::ConfinedRoots::Open(*paths, options.method);
    if (!opened.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(kind->flag, ": ", opened.status().message()));
    }
    *roots = *std::move(opened);
  }
  return out;
}

absl::StatusOr<JobFiles> PathConfinement::OpenJobFiles(
    const core::JobConfig& config) const {
  JobFiles files;
  if (config.data.source != "builtin") {
    absl::StatusOr<core::ConfinedRoots::Opened> data =
        data_roots_.Open(config.data.source, core::EntryKind::kRegularFile);
    if (!data.ok()) {
      LOG(WARNING) << "refused data.source: " << data.status().message();
      return Refused("data.source",
                     config.data.indexed() ? kIndexRoot : kDataRoot,
                     data_roots_);
    }
    files.data = std::move(data->fd);
    files.data_path = std::move(data->path);
    if (config.data.indexed()) {
      // Beside the index as opened: the same root and directory.
      absl::StatusOr<core::ConfinedRoots::Opened> bin = data_roots_.Open(
          core::IndexedBinPath(files.data_path), core::EntryKind::kRegularFile);
      if (!bin.ok()) {
        LOG(WARNING) << "refused data.source's .bin: "
                     << bin.status().message();
        return Refused("data.source", kIndexRoot, data_roots_);
      }
      files.data_bin = std::move(bin->fd);
    }
  }
  for (size_t i = 0; i < config.offload.ssd_dirs.size(); ++i) {
    absl::StatusOr<core::ConfinedRoots::Opened> dir = ssd_roots_.Open(
        config.offload.ssd_dirs[i], core::EntryKind::kDirectory);
    const std::string field = absl::StrCat("offload.ssd_dirs[", i, "]");
    if (!dir.ok()) {
      LOG(WARNING) << "refused " << field << ": " << dir.status().message();
      return Refused(field, kSsdRoot, ssd_roots_);
    }
    files.ssd_dirs.push_back(std::move(dir->fd));
    files.ssd_dir_paths.push_back(std::move(dir->path));
  }
  return files;
}

absl::StatusOr<core::ConfinedRoots::Opened> PathConfinement::OpenModelDir(
    const std::string& init_from) const {
  absl::StatusOr<core::ConfinedRoots::Opened> dir =
      data_roots_.Open(init_from, core::EntryKind::kDirectory);
  if (!dir.ok()) {
    LOG(WARNING) << "refused init_from: " << dir.status().message();
    return Refused("init_from", kModelRoot, data_roots_);
  }
  return dir;
}

int PathConfinement::RemoveStaleTierDirs() const {
  int total = 0;
  for (const core::ConfinedRoots::Root& root : ssd_roots_.roots()) {
    absl::StatusOr<int> removed =
        storage::RemoveStaleTierDirs(root.fd.get(), root.path);
    if (!removed.ok()) {
      LOG(WARNING) << "--ssd_root " << root.path << ": "
                   << removed.status().message();
      continue;
    }
    if (*removed > 0) {
      LOG(INFO) << "removed " << *removed << " NVMe tier director"
                << (*removed == 1 ? "y" : "ies") << " left under " << root.path
                << " by jobs whose process was killed";
    }
    total += *removed;
  }
  return total;
}

}  // namespace stronghold::server
