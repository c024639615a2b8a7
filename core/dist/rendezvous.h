// Where the ranks of one distributed job meet (docs/distributed.md). Rank
// 0's daemon hosts a c10d::TCPStore on master_addr:master_port for as long
// as the job runs there, listening on that address only (the socket is
// bound here and handed to the store); the other ranks connect to it,
// retrying until the collective timeout. Everything a job keeps in the store
// lives under a prefix made of a digest of the job key and an attempt number
// that rank 0 draws when it opens the store, so jobs and runs never see each
// other's keys.
//
// Each rank publishes a digest of every field of its spec (the caller says
// which: the spec without the rank's own fields); the ranks compare every
// rank's digests against rank 0's in one fixed order, so they all reach the
// same verdict: "rank 1's training.lr differs from rank 0's". A rank that
// has not published within the collective timeout fails the rendezvous on
// every rank that waits, naming the missing ranks.
//
// The port is hostile: anyone who can reach it may connect, send garbage
// (c10d's server drops such a client), or write keys. Values read here are
// bounded in size and parsed defensively; a malformed one fails the job
// naming the rank that published it, never the daemon. docs/security.md says
// what the store does not protect against.
//
// Thread safety: Rendezvous() may run on several threads at once (tests run
// several ranks in one process); a Session is used by one job.
#ifndef STRONGHOLD_CORE_DIST_RENDEZVOUS_H_
#define STRONGHOLD_CORE_DIST_RENDEZVOUS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/dist/store_ops.h"
#include "core/plan/job_config.h"

namespace stronghold::core::dist {

// One field of a job's spec as the ranks compare it: its name as in the API
// ("training.lr") and its value in any canonical text form.
struct SpecField {
  std::string name;
  std::string value;
};

struct RendezvousOptions {
  // Address, port, world size, rank, key and timeout (validated:
  // core::ValidateJobConfig). The rank-0 side may use port 0 (tests): the
  // kernel picks one, Session::port() tells it.
  DistributedConfig config;
  // The fields every rank must agree on, in the same order on every rank.
  std::vector<SpecField> fields;
  // Rank 0: called with the port it listens on, before it waits for the
  // others (tests start rank 0 on port 0 and hand the port to the others).
  std::function<void(int port)> on_listening;
};

// A job's view of the store after a successful rendezvous. Rank 0's session
// owns the server: destroying it closes the port.
class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // The job's prefix of the store, for the job's own keys (job control, the
  // communicator). Each call is a new connection to the server (c10d's
  // clone()), so a thread blocked on one does not hold up another.
  absl::StatusOr<StorePtr> Connect() const;
  // The store for c10d (ProcessGroupGloo/NCCL's own rendezvous): the job's
  // prefix, under a sub-prefix of its own.
  absl::StatusOr<StorePtr> CommunicatorStore() const;

  const DistributedConfig& config() const { return config_; }
  int port() const { return port_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  const std::string& prefix() const { return prefix_; }

 private:
  friend absl::StatusOr<std::unique_ptr<Session>> Rendezvous(
      const RendezvousOptions& options);
  // Rendezvous() but for the message of a lost store.
  static absl::StatusOr<std::unique_ptr<Session>> Meet(
      const RendezvousOptions& options);
  Session() = default;

  DistributedConfig config_;
  int port_ = 0;
  std::chrono::milliseconds timeout_{0};
  std::string prefix_;  // "stronghold/<key digest>/<attempt>"
  StorePtr root_;       // the TCPStore (rank 0: client and server)
};

// Hosts or joins the store, publishes this rank's spec digests, and waits
// for every rank's. Returns the session once every rank has published the
// same digests as rank 0; otherwise (on every rank that got that far):
//   FAILED_PRECONDITION "rank R's FIELD differs from rank 0's";
//   DEADLINE_EXCEEDED naming the ranks that did not join in time (for a
//     rank other than 0: rank 0 itself when its store never answered);
//   UNAVAILABLE when the store went away, or rank 0 cannot listen on
//     master_addr:master_port (naming the address);
//   FAILED_PRECONDITION naming the rank whose published value is malformed.
absl::StatusOr<std::unique_ptr<Session>> Rendezvous(
    const RendezvousOptions& options);

// Limits on what is read back from the store.
inline constexpr size_t kMaxSpecFields = 512;
inline constexpr size_t kMaxSpecFieldName = 128;
inline constexpr size_t kMaxDigestsBytes =
    kMaxSpecFields * (kMaxSpecFieldName + 66);

}  // namespace stronghold::core::dist

#endif  // STRONGHOLD_CORE_DIST_RENDEZVOUS_H_
