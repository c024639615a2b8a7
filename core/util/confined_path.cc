#include "core/util/confined_path.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/util/status_macros.h"

namespace stronghold::core {
namespace {

// What one errno means when resolving beneath a root, for the log.
absl::Status OpenError(absl::string_view path, int err) {
  const char* why = err == ELOOP    ? "a symlink on the path (none is followed)"
                    : err == EXDEV  ? "the path leaves the root"
                    : err == ENOENT ? "no such file or directory"
                    : err == ENOTDIR ? "not a directory, or a symlink where "
                                       "one was expected (none is followed)"
                                     : strerror(err);
  const absl::StatusCode code = err == ENOENT ? absl::StatusCode::kNotFound
                                : err == EACCES || err == EPERM ||
                                        err == ELOOP || err == EXDEV ||
                                        err == ENOTDIR
                                    ? absl::StatusCode::kPermissionDenied
                                    : absl::StatusCode::kFailedPrecondition;
  return absl::Status(code, absl::StrCat("'", absl::CHexEscape(path),
                                         "': ", why, " (errno ", err, ")"));
}

// The flags of the last component's open for `kind`.
int FinalFlags(EntryKind kind) {
  return kind == EntryKind::kDirectory
             ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
             : O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC;
}

// The kernel's resolution beneath dir_fd; -errno on failure.
int Openat2(int dir_fd, const std::string& path, EntryKind kind) {
  open_how how{};
  how.flags = static_cast<uint64_t>(FinalFlags(kind));
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long fd = syscall(SYS_openat2, dir_fd, path.c_str(), &how, sizeof(how));
  return fd >= 0 ? static_cast<int>(fd) : -errno;
}

// The same by hand: each component opened with O_NOFOLLOW from the one
// before (a symlink anywhere gives ELOOP or ENOTDIR). -errno on failure.
int Walk(int dir_fd, const std::vector<std::string>& parts, EntryKind kind) {
  UniqueFd held;  // the directory opened last; dir_fd (not owned) first
  int at = dir_fd;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    // O_PATH: the way needs only search permission, as any lookup does.
    UniqueFd next(openat(at, parts[i].c_str(),
                         O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.valid()) return -errno;
    held = std::move(next);
    at = held.get();
  }
  const int fd =
      openat(at, parts.empty() ? "." : parts.back().c_str(), FinalFlags(kind));
  return fd >= 0 ? fd : -errno;
}

// 0 = not tried yet, 1 = the kernel has openat2, -1 = it has not (ENOSYS).
std::atomic<int> openat2_state{0};

}  // namespace

absl::StatusOr<std::vector<std::string>> PathComponents(
    absl::string_view path) {
  const auto refused = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", absl::CHexEscape(path), "': ", why));
  };
  if (path.find('\0') != absl::string_view::npos)
    return refused("contains a NUL byte");
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") return refused("has a '..' component");
    parts.emplace_back(part);
  }
  return parts;
}

absl::StatusOr<UniqueFd> OpenBeneath(int dir_fd, absl::string_view path,
                                     EntryKind kind, BeneathMethod method) {
  if (!path.empty() && path.front() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("'", absl::CHexEscape(path),
                     "' is absolute, not relative to the root"));
  }
  ASSIGN_OR_RETURN(const std::vector<std::string> parts, PathComponents(path));
  const std::string joined = parts.empty() ? "." : absl::StrJoin(parts, "/");
  int fd = -ENOSYS;
  if (method != BeneathMethod::kWalk && openat2_state.load() >= 0) {
    fd = Openat2(dir_fd, joined, kind);
    openat2_state.store(fd == -ENOSYS ? -1 : 1);
  }
  if (fd == -ENOSYS) {
    if (method == BeneathMethod::kOpenat2) {
      return absl::UnimplementedError(
          "openat2(2) is not available in this kernel");
    }
    fd = Walk(dir_fd, parts, kind);
  }
  if (fd < 0) return OpenError(path, -fd);
  UniqueFd opened(fd);
  struct stat st;
  if (fstat(opened.get(), &st) != 0) return OpenError(path, errno);
  if (kind == EntryKind::kRegularFile) {
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("'", absl::CHexEscape(path), "' is not a regular file"));
    }
    // Only there so that opening a FIFO could not block; reads block again.
    fcntl(opened.get(), F_SETFL, fcntl(opened.get(), F_GETFL) & ~O_NONBLOCK);
  }
  return opened;
}

absl::StatusOr<ConfinedRoots> ConfinedRoots::Open(
    const std::vector<std::string>& roots, BeneathMethod method) {
  ConfinedRoots out;
  out.method_ = method;
  for (const std::string& path : roots) {
    if (path.empty() || path.front() != '/' || !PathComponents(path).ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", absl::CHexEscape(path),
                       "' is not an absolute path without '..' components"));
    }
    UniqueFd fd(open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) {
      const int err = errno;
      return absl::Status(
          err == ENOENT ? absl::StatusCode::kNotFound
                        : absl::StatusCode::kFailedPrecondition,
          absl::StrCat("'", absl::CHexEscape(path),
                       "' is not a directory that can be opened: ",
                       strerror(err), " (errno ", err, ")"));
    }
    std::unique_ptr<char, decltype(&free)> canonical(
        realpath(path.c_str(), nullptr), &free);
    out.roots_.push_back(Root{
        path, canonical != nullptr ? canonical.get() : path, std::move(fd)});
  }
  return out;
}

std::string ConfinedRoots::Describe() const {
  if (roots_.empty()) return "none";
  return absl::StrJoin(roots_, ", ", [](std::string* out, const Root& r) {
    absl::StrAppend(out, r.path);
  });
}

namespace {

// The components of `path` after those of `root`, when `root` is a prefix
// of it component by component.
bool Beneath(const std::vector<std::string>& root,
             const std::vector<std::string>& path, std::string* rest) {
  if (path.size() < root.size()) return false;
  for (size_t i = 0; i < root.size(); ++i) {
    if (path[i] != root[i]) return false;
  }
  *rest = absl::StrJoin(path.begin() + root.size(), path.end(), "/");
  return true;
}

}  // namespace

absl::StatusOr<ConfinedRoots::Opened> ConfinedRoots::Open(
    absl::string_view path, EntryKind kind) const {
  if (roots_.empty())
    return absl::FailedPreconditionError("no root is configured");
  ASSIGN_OR_RETURN(const std::vector<std::string> parts, PathComponents(path));
  const bool absolute = !path.empty() && path.front() == '/';
  absl::Status first = absl::PermissionDeniedError(
      absl::StrCat("'", absl::CHexEscape(path),
                   "' is under none of the roots (", Describe(), ")"));
  bool tried = false;
  for (const Root& root : roots_) {
    std::string rest = absl::StrJoin(parts, "/");
    if (absolute) {
      bool under = false;
      for (const std::string* form : {&root.path, &root.canonical}) {
        under = under || Beneath(*PathComponents(*form), parts, &rest);
      }
      if (!under) continue;
    }
    absl::StatusOr<UniqueFd> fd =
        OpenBeneath(root.fd.get(), rest, kind, method_);
    if (fd.ok()) {
      return Opened{*std::move(fd), rest.empty()
                                        ? root.path
                                        : absl::StrCat(root.path, "/", rest)};
    }
    if (!tried) first = fd.status();
    tried = true;
  }
  return first;
}

}  // namespace stronghold::core
