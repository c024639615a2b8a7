// The identity of unix socket peers, from the kernel (docs/security.md).
//
// gRPC 1.51 does not tell a handler who is on the other end of a unix
// socket: peer() is "unix:" and the auth context is empty. So the daemon
// accepts unix connections itself (server/auth/unix_listener.h), reads each
// peer's credentials from the kernel at accept time (SO_PEERCRED: uid, gid,
// pid; SO_PEERGROUPS: supplementary groups), records them here under the
// connection's fd, and hands the fd to gRPC (grpc::AddInsecureChannelFromFd),
// whose ServerContext::peer() is then "fd:N" for every call on it.
//
// Why the fd number is a safe key: gRPC closes a connection's fd only when
// the transport is destroyed, which waits for every call on it to be
// destroyed, so while a handler runs, N is still its connection. A number is
// reused after a close, so Find() also checks that fd N is still the socket
// that was accepted (device and inode), and a new accept overwrites the entry.
#ifndef STRONGHOLD_SERVER_AUTH_UNIX_PEERS_H_
#define STRONGHOLD_SERVER_AUTH_UNIX_PEERS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace stronghold::server {

struct UnixPeer {
  // What the kernel recorded when the peer connected.
  int64_t uid = -1;
  int64_t gid = -1;
  int64_t pid = 0;
  // Root, or in the admin group as its primary or a supplementary group.
  bool admin = false;
  // The accepted socket (fstat), to recognise it again.
  dev_t dev = 0;
  ino_t ino = 0;
};

// Reads the credentials of the peer of connected unix socket `fd`.
// `admin_gid`: the group whose members are admins (nullopt = only root).
// INTERNAL naming the call that failed.
absl::StatusOr<UnixPeer> ReadUnixPeer(int fd, std::optional<gid_t> admin_gid);

// fd -> peer of the connections the daemon accepted. Thread-safe.
class UnixPeerTable {
 public:
  // Records the peer of a just-accepted `fd` (replacing an earlier
  // connection's entry under the same number).
  void Add(int fd, const UnixPeer& peer);

  // The peer of the connection that gRPC calls `grpc_peer` ("fd:N").
  // UNAUTHENTICATED when `grpc_peer` is not of that form, no connection was
  // accepted as fd N, or fd N is no longer that socket.
  absl::StatusOr<UnixPeer> Find(absl::string_view grpc_peer) const;

  // Entries recorded (connections accepted, less fd numbers reused).
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::unordered_map<int, UnixPeer> peers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_AUTH_UNIX_PEERS_H_
