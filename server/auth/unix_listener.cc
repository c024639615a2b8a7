#include "server/auth/unix_listener.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "glog/logging.h"

namespace stronghold::server {
namespace {

absl::Status Errno(absl::string_view call, const std::string& path) {
  const int error = errno;
  return absl::Status(error == EACCES || error == EPERM
                          ? absl::StatusCode::kPermissionDenied
                          : absl::StatusCode::kInternal,
                      absl::StrCat(call, " ", path, ": ", strerror(error)));
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  memcpy(address.sun_path, path.data(),
         path.size());  // checked to fit, NUL-terminated
  return address;
}

// Whether a process accepts connections on the socket at `path`: a stale
// socket of a daemon that died refuses them.
absl::StatusOr<bool> SomeoneServes(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket() to probe", path);
  const sockaddr_un address = Address(path);
  const int rc =
      connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int error = errno;
  close(fd);
  if (rc == 0 || error == EAGAIN) return true;  // EAGAIN: its backlog is full
  if (error == ECONNREFUSED || error == ENOENT) return false;
  errno = error;
  return Errno("connect() to probe", path);
}

// Removes a stale socket at `path`; refuses anything else there.
absl::Status ClearPath(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno("lstat", path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path,
                     " exists and is not a socket; refusing to replace it "
                     "(remove it, or choose another path)"));
  }
  absl::StatusOr<bool> serves = SomeoneServes(path);
  if (!serves.ok()) return serves.status();
  if (*serves) {
    return absl::FailedPreconditionError(absl::StrCat(
        "another process serves on ", path, " (is a daemon running there?)"));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Errno("unlink stale socket", path);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<gid_t> LookUpGroup(const std::string& name) {
  std::vector<char> buffer(16384);
  group entry{};
  group* found = nullptr;
  int error = 0;
  // ERANGE: a group with many members needs a larger buffer.
  while ((error = getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(),
                             &found)) == ERANGE &&
         buffer.size() < (64u << 20)) {
    buffer.resize(buffer.size() * 2);
  }
  if (found != nullptr) return found->gr_gid;
  uint32_t id = 0;
  if (absl::SimpleAtoi(name, &id)) return static_cast<gid_t>(id);
  return absl::NotFoundError(
      absl::StrCat("no group \"", name, "\"",
                   error != 0 ? absl::StrCat(" (", strerror(error), ")") : ""));
}

absl::StatusOr<mode_t> ParseSocketMode(const std::string& text) {
  mode_t mode = 0;
  bool valid = !text.empty() && text.size() <= 4;
  for (const char c : text) {
    if (c < '0' || c > '7') valid = false;
    mode = mode * 8 + (c - '0');
  }
  if (!valid || mode > 0777) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", text,
        "\" is not a permission mode in octal within 0777, e.g. 0660"));
  }
  return mode;
}

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Listen(
    UnixListenerOptions options, UnixPeerTable* peers) {
  const std::string& path = options.path;
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\" is ", path.size(),
                     " bytes long; unix socket paths take 1 to ",
                     sizeof(sockaddr_un::sun_path) - 1));
  }
  if (options.mode > 0777) {
    return absl::InvalidArgumentError(
        absl::StrCat("socket mode ", options.mode, " is not within 0777"));
  }
  if (absl::Status s = ClearPath(path); !s.ok()) return s;

  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket() for", path);
  const sockaddr_un address = Address(path);
  // Until listen(), connect() is refused, so setting the mode and group
  // between bind() and listen() leaves no window under another mode.
  absl::Status status;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) !=
      0) {
    status = Errno("bind", path);
  } else if (options.group.has_value() &&
             lchown(path.c_str(), -1, *options.group) != 0) {
    status = Errno(absl::StrCat("chgrp ", *options.group), path);
  } else if (fchmodat(AT_FDCWD, path.c_str(), options.mode,
                      AT_SYMLINK_NOFOLLOW) != 0) {
    status = Errno(absl::StrFormat("chmod %04o", options.mode), path);
  } else if (listen(fd, SOMAXCONN) != 0) {
    status = Errno("listen", path);
  }
  if (!status.ok()) {
    close(fd);
    unlink(path.c_str());
    return status;
  }
  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    close(fd);
    unlink(path.c_str());
    return Errno("eventfd for", path);
  }
  return std::unique_ptr<UnixListener>(
      new UnixListener(std::move(options), peers, fd, stop_fd));
}

UnixListener::UnixListener(UnixListenerOptions options, UnixPeerTable* peers,
                           int listen_fd, int stop_fd)
    : options_(std::move(options)),
      peers_(peers),
      listen_fd_(listen_fd),
      stop_fd_(stop_fd) {}

UnixListener::~UnixListener() {
  Stop();
  close(stop_fd_);
}

void UnixListener::Start(std::function<void(int fd)> hand_off) {
  CHECK(!thread_.joinable() && listen_fd_ >= 0)
      << "UnixListener::Start called twice";
  thread_ = std::thread(
      [this, hand_off = std::move(hand_off)] { AcceptLoop(hand_off); });
}

void UnixListener::Stop() {
  if (listen_fd_ < 0) return;
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) != sizeof(one))
    PLOG(ERROR) << "eventfd write";
  if (thread_.joinable()) thread_.join();
  close(listen_fd_);
  listen_fd_ = -1;
  unlink(options_.path.c_str());
}

void UnixListener::AcceptLoop(const std::function<void(int fd)>& hand_off) {
  pollfd fds[2] = {{.fd = listen_fd_, .events = POLLIN},
                   {.fd = stop_fd_, .events = POLLIN}};
  while (true) {
    fds[0].revents = fds[1].revents = 0;
    if (poll(fds, 2, -1) < 0 && errno != EINTR)
      PLOG(ERROR) << "poll on " << options_.path;
    if (fds[1].revents != 0) return;
    const int fd =
        accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      // Out of file descriptors or memory: the pending connection stays in
      // the backlog; try again shortly rather than spin.
      PLOG(WARNING) << "accept on " << options_.path;
      if (poll(&fds[1], 1, /*timeout=*/100) > 0) return;
      continue;
    }
    absl::StatusOr<UnixPeer> peer = ReadUnixPeer(fd, options_.admin_group);
    if (!peer.ok()) {
      LOG(WARNING) << "refusing a connection on " << options_.path << ": "
                   << peer.status();
      close(fd);
      continue;
    }
    peers_->Add(fd, *peer);
    hand_off(fd);
  }
}

}  // namespace stronghold::server
