#include "server/auth/unix_peers.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace stronghold::server {
namespace {

absl::Status Errno(absl::string_view call, int fd) {
  return absl::InternalError(
      absl::StrCat(call, " on unix socket fd ", fd, ": ", strerror(errno)));
}

// The peer's supplementary groups as the kernel recorded them at connect().
absl::StatusOr<std::vector<gid_t>> PeerGroups(int fd) {
  std::vector<gid_t> groups(16);
  while (true) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      return groups;
    }
    // ERANGE: `bytes` now says how much the list needs.
    if (errno != ERANGE || bytes / sizeof(gid_t) <= groups.size()) {
      return Errno("getsockopt(SO_PEERGROUPS)", fd);
    }
    groups.resize(bytes / sizeof(gid_t));
  }
}

}  // namespace

absl::StatusOr<UnixPeer> ReadUnixPeer(int fd, std::optional<gid_t> admin_gid) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Errno("getsockopt(SO_PEERCRED)", fd);
  }
  struct stat st;
  if (fstat(fd, &st) != 0) return Errno("fstat", fd);
  UnixPeer peer{.uid = cred.uid,
                .gid = cred.gid,
                .pid = cred.pid,
                .dev = st.st_dev,
                .ino = st.st_ino};
  peer.admin = cred.uid == 0;
  if (!peer.admin && admin_gid.has_value()) {
    if (cred.gid == *admin_gid) {
      peer.admin = true;
    } else {
      absl::StatusOr<std::vector<gid_t>> groups = PeerGroups(fd);
      if (!groups.ok()) return groups.status();
      peer.admin = std::find(groups->begin(), groups->end(), *admin_gid) !=
                   groups->end();
    }
  }
  return peer;
}

void UnixPeerTable::Add(int fd, const UnixPeer& peer) {
  absl::MutexLock lock(&mu_);
  peers_[fd] = peer;
}

absl::StatusOr<UnixPeer> UnixPeerTable::Find(
    absl::string_view grpc_peer) const {
  absl::string_view number = grpc_peer;
  int fd = -1;
  if (!absl::ConsumePrefix(&number, "fd:") || !absl::SimpleAtoi(number, &fd) ||
      fd < 0) {
    return absl::UnauthenticatedError(absl::StrCat(
        "unix peer \"", grpc_peer, "\" was not accepted by the daemon"));
  }
  struct stat st;
  const bool is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(fd);
  if (!is_socket || it == peers_.end() || it->second.dev != st.st_dev ||
      it->second.ino != st.st_ino) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the connection on fd ", fd, " is not one the daemon accepted"));
  }
  return it->second;
}

size_t UnixPeerTable::size() const {
  absl::MutexLock lock(&mu_);
  return peers_.size();
}

}  // namespace stronghold::server
