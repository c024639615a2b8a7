// Opening a path that someone else named only inside directories the
// operator chose ("roots"), so that a job spec cannot make the daemon read or
// write anywhere else. The mechanism only: which roots serve which field,
// and what a client is told, is the daemon's policy
// (server/path_confinement.h).
//
// A path is resolved beneath a root's directory descriptor, opened once:
//  - no ".." component, anywhere (refused before anything is opened);
//  - no symlink is followed, anywhere on the path, even one that would stay
//    inside the root: the simplest rule to state and to check, and the one
//    both implementations below enforce identically. A root's own path may
//    contain symlinks: the operator chose it, and it is resolved once, when
//    the roots are opened;
//  - no magic link (/proc/self/fd/N, /proc/self/root) either;
//  - mount points beneath a root are crossed (an NVMe drive mounted inside
//    the ssd root is the point of one).
// The kernel does it with openat2(2), RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS, which also closes the race with a concurrent
// rename. Where openat2 is missing (ENOSYS: Linux before 5.6, some seccomp
// filters) the path is walked one component at a time from the root's
// descriptor with O_NOFOLLOW, which refuses the same paths.
//
// What is opened is the caller's to use (read a token file, create files in
// a directory): there is no second lookup by name, so no gap between the
// check and the use.
//
// Thread safety: OpenBeneath and the const methods of ConfinedRoots may be
// called concurrently.
#ifndef STRONGHOLD_CORE_UTIL_CONFINED_PATH_H_
#define STRONGHOLD_CORE_UTIL_CONFINED_PATH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/util/unique_fd.h"

namespace stronghold::core {

enum class EntryKind {
  kRegularFile,  // opened O_RDONLY (O_NONBLOCK while opening: a FIFO does not
                 // block)
  kDirectory,    // opened O_RDONLY | O_DIRECTORY: usable with mkdirat, openat
};

enum class BeneathMethod {
  kAuto,  // openat2, or the walk where the kernel has no openat2 (decided once)
  kOpenat2,  // openat2 or UNIMPLEMENTED
  kWalk,     // the O_NOFOLLOW component walk
};

// Opens `path`, relative, beneath the directory `dir_fd` ("" or "." is the
// directory itself). INVALID_ARGUMENT for a path that is absolute or has a
// ".." component or a NUL byte; otherwise the reason it could not be opened
// as `kind` (a symlink or magic link on the path, not found, no permission,
// not a regular file / directory), with the errno. Messages name the path:
// they are for the operator's log, not for whoever named the path.
absl::StatusOr<UniqueFd> OpenBeneath(
    int dir_fd, absl::string_view path, EntryKind kind,
    BeneathMethod method = BeneathMethod::kAuto);

// The path split into its components, "." and empty ones dropped (so
// "a//./b/" is {"a", "b"}); INVALID_ARGUMENT naming the path for a ".."
// component or a NUL byte.
absl::StatusOr<std::vector<std::string>> PathComponents(absl::string_view path);

// A set of roots, each a directory opened once (at the daemon's start).
// Movable, not copyable; an empty set opens nothing.
class ConfinedRoots {
 public:
  ConfinedRoots() = default;
  ConfinedRoots(ConfinedRoots&&) = default;
  ConfinedRoots& operator=(ConfinedRoots&&) = default;

  // Opens every root (O_PATH | O_DIRECTORY). INVALID_ARGUMENT naming the
  // root for one that is not an absolute path, NOT_FOUND / the errno for one
  // that is not an existing directory.
  static absl::StatusOr<ConfinedRoots> Open(
      const std::vector<std::string>& roots,
      BeneathMethod method = BeneathMethod::kAuto);

  struct Opened {
    UniqueFd fd;
    // The root joined with the path beneath it: for messages and logs.
    std::string path;
  };

  // Opens `path` inside a root. An absolute path must lie, component by
  // component, under a root as it was given or as it resolved when opened
  // (its canonical path), and is opened beneath that root; a relative path
  // is relative to the roots, tried in order, never to the working
  // directory. Errors as OpenBeneath's (for the log); FAILED_PRECONDITION
  // without any root, PERMISSION_DENIED for an absolute path under none.
  absl::StatusOr<Opened> Open(absl::string_view path, EntryKind kind) const;

  bool empty() const { return roots_.empty(); }
  // The roots as given, comma-separated ("none" when empty).
  std::string Describe() const;
  // Each root as given with its descriptor (for scans of a root's contents).
  struct Root {
    std::string path;       // as given
    std::string canonical;  // as it resolved when opened
    UniqueFd fd;            // O_PATH | O_DIRECTORY
  };
  const std::vector<Root>& roots() const { return roots_; }

 private:
  std::vector<Root> roots_;
  BeneathMethod method_ = BeneathMethod::kAuto;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_CONFINED_PATH_H_
