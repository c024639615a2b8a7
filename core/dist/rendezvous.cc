#include "core/dist/rendezvous.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>
#include <thread>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace stronghold::core::dist {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::milliseconds(50);
constexpr size_t kMaxAttemptBytes = 32;
constexpr size_t kMaxCheckedBytes = 16;

std::string FirstLine(const char* what) {
  const absl::string_view text(what != nullptr ? what : "");
  return std::string(text.substr(0, text.find('\n')));
}

std::string Endpoint(const DistributedConfig& c, int port) {
  return absl::StrCat(c.master_addr, ":", port);
}

// A socket listening on master_addr:port (that address only), close-on-exec;
// the port the kernel gave when `port` is 0.
absl::StatusOr<std::pair<int, int>> Listen(const std::string& addr, int port,
                                           std::string* numeric_host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  std::string host = addr;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("distributed.master_addr: cannot resolve ", addr, ": ",
                     gai_strerror(rc)));
  }
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = std::strerror(errno);
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
      last_error = std::strerror(errno);
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
    char text[NI_MAXHOST] = {0};
    char serv[NI_MAXSERV] = {0};
    getnameinfo(reinterpret_cast<sockaddr*>(&bound), length, text, sizeof(text),
                serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV);
    *numeric_host = text;
    freeaddrinfo(found);
    return std::make_pair(fd, std::atoi(serv));
  }
  freeaddrinfo(found);
  return absl::UnavailableError(absl::StrCat(
      "rank 0 cannot listen on distributed.master_addr ", addr, " port ", port,
      " (", last_error,
      "): the address must be one of rank 0's host and the port free"));
}

std::string RandomAttempt() {
  std::random_device random;
  const uint64_t value = (static_cast<uint64_t>(random()) << 32) ^ random();
  return absl::StrCat(absl::Hex(value, absl::kZeroPad16));
}

// "name\t<sha256 hex>\n" per field.
std::string Digests(const std::vector<SpecField>& fields) {
  std::string out;
  for (const SpecField& f : fields)
    absl::StrAppend(&out, f.name, "\t", Sha256Hex(f.value), "\n");
  return out;
}

struct Digest {
  std::string name;
  std::string hex;
};

// Parses what rank `rank` published; nothing in it is trusted.
absl::StatusOr<std::vector<Digest>> ParseDigests(int rank,
                                                 const std::string& text) {
  auto malformed = [rank](absl::string_view why) {
    return absl::FailedPreconditionError(
        absl::StrCat("rank ", rank, " published a malformed spec digest (", why,
                     "): is it a strongholdd of the same version?"));
  };
  std::vector<Digest> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (out.size() >= kMaxSpecFields) return malformed("too many fields");
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(line, absl::MaxSplits('\t', 1));
    if (parts.first.empty() || parts.first.size() > kMaxSpecFieldName)
      return malformed("a field name of bad length");
    if (parts.second.size() != 64) return malformed("a digest of bad length");
    for (char c : parts.first) {
      if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
            c == '_' || c == '[' || c == ']'))
        return malformed("a field name with a bad character");
    }
    for (char c : parts.second) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)))
        return malformed("a digest that is not hex");
    }
    out.push_back({std::string(parts.first), std::string(parts.second)});
  }
  return out;
}

// The first difference between rank `rank`'s digests and rank 0's.
absl::Status Compare(int rank, const std::vector<Digest>& mine,
                     const std::vector<Digest>& rank0) {
  for (size_t i = 0; i < std::min(mine.size(), rank0.size()); ++i) {
    if (mine[i].name != rank0[i].name) {
      return absl::FailedPreconditionError(
          absl::StrCat("rank ", rank, "'s spec has field ", mine[i].name,
                       " where rank 0's has ", rank0[i].name,
                       ": are both strongholdd of the same version?"));
    }
    if (mine[i].hex != rank0[i].hex) {
      return absl::FailedPreconditionError(absl::StrCat(
          "rank ", rank, "'s ", mine[i].name, " differs from rank 0's"));
    }
  }
  if (mine.size() != rank0.size()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "rank ", rank, "'s spec has ", mine.size(), " fields, rank 0's ",
        rank0.size(), ": are both strongholdd of the same version?"));
  }
  return absl::OkStatus();
}

std::string RankKey(absl::string_view what, int rank) {
  return absl::StrCat(what, "/", rank);
}

// Waits until every rank's `what` key is set or `deadline` passes; the
// values (at most max_bytes each), or DEADLINE_EXCEEDED naming the ranks
// still missing.
absl::StatusOr<std::vector<std::string>> WaitForRanks(
    c10d::Store& store, absl::string_view what, int world, size_t max_bytes,
    Clock::time_point deadline, int timeout_s, absl::string_view waiting_for) {
  std::vector<std::string> keys;
  for (int r = 0; r < world; ++r) keys.push_back(RankKey(what, r));
  std::vector<std::optional<std::string>> values(world);
  while (true) {
    std::vector<int> missing;
    std::vector<std::string> missing_keys;
    for (int r = 0; r < world; ++r) {
      if (!values[r].has_value()) {
        missing.push_back(r);
        missing_keys.push_back(keys[r]);
      }
    }
    if (missing.empty()) break;
    ASSIGN_OR_RETURN(std::vector<std::optional<std::string>> got,
                     StoreGetIfSet(store, missing_keys, max_bytes));
    for (size_t i = 0; i < missing.size(); ++i) values[missing[i]] = got[i];
    bool all = true;
    for (const auto& v : values) all = all && v.has_value();
    if (all) break;
    if (Clock::now() >= deadline) {
      std::vector<int> still;
      for (int r = 0; r < world; ++r)
        if (!values[r].has_value()) still.push_back(r);
      return absl::DeadlineExceededError(absl::StrCat(
          still.size() == 1 ? "rank " : "ranks ", absl::StrJoin(still, ", "),
          " did not ", waiting_for, " within ", timeout_s,
          " s (distributed.collective_timeout_s)"));
    }
    std::this_thread::sleep_for(kPoll);
  }
  std::vector<std::string> out;
  for (auto& v : values) out.push_back(std::move(*v));
  return out;
}

}  // namespace

Session::~Session() = default;

absl::StatusOr<StorePtr> Session::Connect() const {
  try {
    return StorePtr(
        c10::make_intrusive<c10d::PrefixStore>(prefix_, root_->clone()));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot reconnect to the rendezvous store at ",
                     Endpoint(config_, port_), ": ", FirstLine(e.what())));
  }
}

absl::StatusOr<StorePtr> Session::CommunicatorStore() const {
  ASSIGN_OR_RETURN(StorePtr store, Connect());
  return StorePtr(c10::make_intrusive<c10d::PrefixStore>("c10d", store));
}

absl::StatusOr<std::unique_ptr<Session>> Rendezvous(
    const RendezvousOptions& options) {
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Meet(options);
  if (absl::IsUnavailable(session.status()) && options.config.rank != 0) {
    // The store lives in rank 0's daemon: losing it is losing rank 0.
    return absl::UnavailableError(absl::StrCat(
        "lost rank 0's rendezvous store (rank 0's daemon died or is "
        "unreachable): ",
        session.status().message()));
  }
  return session;
}

absl::StatusOr<std::unique_ptr<Session>> Session::Meet(
    const RendezvousOptions& options) {
  const DistributedConfig& c = options.config;
  const auto start = Clock::now();
  const auto timeout = std::chrono::milliseconds(
      static_cast<int64_t>(c.collective_timeout_s) * 1000);
  const auto deadline = start + timeout;
  std::unique_ptr<Session> session(new Session());
  session->config_ = c;
  session->timeout_ = timeout;
  // The key never reaches the store or the logs, only a digest of it.
  const std::string job = Sha256Hex(c.job_key).substr(0, 32);
  const std::string attempt_key = absl::StrCat("stronghold/", job, "/attempt");

  c10d::TCPStoreOptions store_options;
  store_options.timeout = timeout;
  store_options.waitWorkers = false;
  std::string host = c.master_addr;  // c10d takes an IPv6 one bare
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (c.rank == 0) {
    std::string numeric;
    ASSIGN_OR_RETURN(const auto listening,
                     Listen(c.master_addr, c.master_port, &numeric));
    session->port_ = listening.second;
    store_options.isServer = true;
    store_options.port = static_cast<uint16_t>(listening.second);
    // The store takes the socket over, bound to master_addr only (c10d
    // alone would listen on every address of the host).
    store_options.masterListenFd = listening.first;
    host = numeric;
  } else {
    session->port_ = c.master_port;
    store_options.port = static_cast<uint16_t>(session->port_);
  }
  try {
    session->root_ = c10::make_intrusive<c10d::TCPStore>(host, store_options);
  } catch (const std::exception& e) {
    if (c.rank == 0) {
      return absl::UnavailableError(
          absl::StrCat("rank 0 cannot host the rendezvous store on ",
                       Endpoint(c, session->port_), ": ", FirstLine(e.what())));
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "rank 0 did not open the rendezvous store at ",
        Endpoint(c, session->port_), " within ", c.collective_timeout_s,
        " s (distributed.collective_timeout_s): ", FirstLine(e.what())));
  }
  c10d::Store& root = *session->root_;
  std::string attempt;
  if (c.rank == 0) {
    attempt = RandomAttempt();
    RETURN_IF_ERROR(StoreSet(root, attempt_key, attempt));
  } else {
    // Rank 0 sets it right after it opens the store; a job of another key
    // on the same port never does, and this rank times out naming rank 0.
    while (true) {
      ASSIGN_OR_RETURN(auto got,
                       StoreGetIfSet(root, {attempt_key}, kMaxAttemptBytes));
      if (got[0].has_value()) {
        attempt = *got[0];
        break;
      }
      if (Clock::now() >= deadline) {
        return absl::DeadlineExceededError(absl::StrCat(
            "rank 0 did not join within ", c.collective_timeout_s,
            " s (distributed.collective_timeout_s): the store at ",
            Endpoint(c, session->port_),
            " answers but holds no job of this distributed.job_key"));
      }
      std::this_thread::sleep_for(kPoll);
    }
    for (char ch : attempt) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(ch)))
        return absl::FailedPreconditionError(
            "the rendezvous store holds a malformed attempt: is another "
            "program on distributed.master_port?");
    }
  }
  session->prefix_ = absl::StrCat("stronghold/", job, "/", attempt);
  if (c.rank == 0 && options.on_listening) options.on_listening(session->port_);

  ASSIGN_OR_RETURN(StorePtr store, session->Connect());
  RETURN_IF_ERROR(
      StoreSet(*store, RankKey("spec", c.rank), Digests(options.fields)));
  ASSIGN_OR_RETURN(const std::vector<std::string> published,
                   WaitForRanks(*store, "spec", c.world_size, kMaxDigestsBytes,
                                deadline, c.collective_timeout_s, "join"));
  // Every rank checks every rank against rank 0 in the same order: they
  // all reach the same verdict.
  absl::Status verdict = absl::OkStatus();
  absl::StatusOr<std::vector<Digest>> rank0 = ParseDigests(0, published[0]);
  if (!rank0.ok()) verdict = rank0.status();
  for (int r = 1; r < c.world_size && verdict.ok(); ++r) {
    absl::StatusOr<std::vector<Digest>> theirs = ParseDigests(r, published[r]);
    verdict = theirs.ok() ? Compare(r, *theirs, *rank0) : theirs.status();
  }
  RETURN_IF_ERROR(StoreSet(*store, RankKey("checked", c.rank),
                           verdict.ok() ? "ok" : "mismatch"));
  if (!verdict.ok()) {
    if (c.rank == 0) {
      // Keep the store up until the others have read what they compare (or
      // a few seconds): they then report the field too, not a lost store.
      const auto linger =
          std::min(deadline, Clock::now() + std::chrono::seconds(5));
      WaitForRanks(*store, "checked", c.world_size, kMaxCheckedBytes, linger,
                   c.collective_timeout_s, "check")
          .IgnoreError();
    }
    return verdict;
  }
  ASSIGN_OR_RETURN(
      const std::vector<std::string> checked,
      WaitForRanks(*store, "checked", c.world_size, kMaxCheckedBytes, deadline,
                   c.collective_timeout_s, "finish the rendezvous"));
  for (int r = 0; r < c.world_size; ++r) {
    if (checked[r] != "ok") {
      return absl::FailedPreconditionError(
          absl::StrCat("rank ", r, " found the ranks' specs differ"));
    }
  }
  return session;
}

}  // namespace stronghold::core::dist
