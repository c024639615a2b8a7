// The daemon's unix socket, accepted by the daemon itself so that every
// connection's peer is known (server/auth/unix_peers.h, docs/security.md).
//
// Listen() creates the socket with its mode and group set before it listens,
// so no connection is accepted under a looser mode. It refuses a path that
// exists and is not a socket, and a socket another process still serves on;
// a stale socket of an earlier run is replaced. Start() accepts on a thread of
// its own: each connection (non-blocking, close-on-exec, as gRPC needs) has
// its peer recorded in the table, then is handed over (to
// grpc::AddInsecureChannelFromFd, which owns the fd from then on).
//
// Thread safety: Listen, Start, Stop and the destructor from one thread.
#ifndef STRONGHOLD_SERVER_AUTH_UNIX_LISTENER_H_
#define STRONGHOLD_SERVER_AUTH_UNIX_LISTENER_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/auth/unix_peers.h"

namespace stronghold::server {

struct UnixListenerOptions {
  std::string path;  // required; at most 107 bytes
  // Permission bits of the socket: who may connect (write permission is
  // what connect() needs). 0660: the daemon's user and the socket's group.
  mode_t mode = 0660;
  // The socket's group; nullopt = the daemon's (effective) group.
  std::optional<gid_t> group;
  // Peers in this group (primary or supplementary) are admins; nullopt =
  // only root.
  std::optional<gid_t> admin_group;
};

class UnixListener {
 public:
  // Binds and listens. INVALID_ARGUMENT for a bad path or mode;
  // FAILED_PRECONDITION for a path that is not a socket or one another
  // process serves on; the system's errors naming the call otherwise.
  // `peers` must outlive the listener.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Listen(
      UnixListenerOptions options, UnixPeerTable* peers);
  ~UnixListener();  // Stop()
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Starts accepting; `hand_off(fd)` takes ownership of each connection
  // after its peer is recorded. Once only.
  void Start(std::function<void(int fd)> hand_off);

  // Stops accepting (joins the thread), closes the socket and removes its
  // file. Connections already handed off are not touched. Call it before
  // grpc::Server::Shutdown: nothing may be handed to a server shutting down.
  // Idempotent.
  void Stop();

  const std::string& path() const { return options_.path; }

 private:
  UnixListener(UnixListenerOptions options, UnixPeerTable* peers, int listen_fd,
               int stop_fd);
  void AcceptLoop(const std::function<void(int fd)>& hand_off);

  // Constant after construction.
  const UnixListenerOptions options_;
  UnixPeerTable* const peers_;  // not owned
  int listen_fd_;               // -1 once stopped
  int stop_fd_;                 // eventfd, written by Stop()
  std::thread thread_;
};

// The id of group `name` (a name from the group database, or a number).
// NOT_FOUND naming it.
absl::StatusOr<gid_t> LookUpGroup(const std::string& name);

// "0660" (octal, as chmod writes it) -> mode bits. INVALID_ARGUMENT for
// anything but 1-4 octal digits within 0777.
absl::StatusOr<mode_t> ParseSocketMode(const std::string& text);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_AUTH_UNIX_LISTENER_H_
