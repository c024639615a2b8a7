#include "core/dist/job_control.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "glog/logging.h"

namespace stronghold::core::dist {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxBeatBytes = 24;
constexpr size_t kMaxAbortBytes = 2048;
constexpr size_t kMaxMessageBytes = 1024;
constexpr auto kPoll = std::chrono::milliseconds(20);

std::string RankKey(absl::string_view what, int rank) {
  return absl::StrCat(what, "/", rank);
}

std::chrono::milliseconds Interval(const JobControlOptions& o) {
  if (o.interval.count() > 0) return o.interval;
  return std::clamp(o.timeout / 10, std::chrono::milliseconds(50),
                    std::chrono::milliseconds(1000));
}

const char* KindName(StopKind kind) {
  return kind == StopKind::kShutdown ? "shutdown" : "checkpoint-cancel";
}

// "<rank>\t<kind>": what another rank wrote; nullopt if malformed.
std::optional<std::pair<int, std::string>> ParseRankAndText(
    absl::string_view text, int world) {
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('\t', 1));
  int rank = -1;
  if (!absl::SimpleAtoi(parts.first, &rank) || rank < 0 || rank >= world)
    return std::nullopt;
  return std::make_pair(rank, std::string(parts.second));
}

}  // namespace

JobControl::JobControl(StorePtr store, JobControlOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      interval_(Interval(options_)),
      last_beat_(options_.world_size),
      last_moved_(options_.world_size, Clock::now()) {}

JobControl::~JobControl() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (watchdog_.joinable()) watchdog_.join();
}

void JobControl::Start() {
  const auto now = Clock::now();
  std::fill(last_moved_.begin(), last_moved_.end(), now);
  Round();
  watchdog_ = std::thread([this] { Loop(); });
}

void JobControl::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      cv_.WaitWithTimeout(&mu_, absl::FromChrono(interval_));
      if (stopping_) return;
    }
    Round();
  }
}

void JobControl::Abort(absl::Status why) {
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) {
      status_ = std::move(why);
      first = true;
    }
  }
  if (!first) return;
  LOG(WARNING) << "rank " << options_.rank << ": " << status();
  interrupted_.store(true);
  if (options_.on_abort) options_.on_abort();
}

void JobControl::Round() {
  if (interrupted_.load()) return;
  const int world = options_.world_size;
  auto lost = [&](const absl::Status& s) {
    Abort(absl::UnavailableError(absl::StrCat(
        "lost the job's rendezvous store, which rank 0's daemon hosts (rank 0 "
        "died, stopped or is unreachable): ",
        s.message())));
  };
  if (absl::Status s = StoreSet(*store_, RankKey("hb", options_.rank),
                                absl::StrCat(++beats_));
      !s.ok()) {
    return lost(s);
  }
  // One look at everything the others may have written.
  std::vector<std::string> keys = {"abort", "stop"};
  for (int r = 0; r < world; ++r) {
    keys.push_back(RankKey("hb", r));
    keys.push_back(RankKey("done", r));
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> got =
      StoreGetIfSet(*store_, keys, kMaxAbortBytes);
  if (!got.ok()) {
    if (absl::IsUnavailable(got.status())) return lost(got.status());
    return Abort(absl::FailedPreconditionError(got.status().message()));
  }
  const std::vector<std::optional<std::string>>& v = *got;
  if (v[0].has_value()) {
    // "<rank>\t<failed|cancelled>\t<message>"
    std::optional<std::pair<int, std::string>> who =
        ParseRankAndText(*v[0], world);
    if (!who.has_value()) {
      return Abort(absl::FailedPreconditionError(
          "the job's store holds a malformed abort: is another program "
          "writing to distributed.master_port?"));
    }
    if (who->first != options_.rank) {
      std::pair<absl::string_view, absl::string_view> parts =
          absl::StrSplit(who->second, absl::MaxSplits('\t', 1));
      if (parts.first == "cancelled") {
        return Abort(absl::CancelledError(
            absl::StrCat("cancelled on rank ", who->first)));
      }
      return Abort(absl::UnavailableError(
          absl::StrCat("rank ", who->first, " failed: ", parts.second)));
    }
  }
  if (v[1].has_value()) {
    std::optional<std::pair<int, std::string>> who =
        ParseRankAndText(*v[1], world);
    if (!who.has_value() ||
        (who->second != "shutdown" && who->second != "checkpoint-cancel")) {
      return Abort(absl::FailedPreconditionError(
          "the job's store holds a malformed stop request: is another "
          "program writing to distributed.master_port?"));
    }
    std::optional<int64_t> proposal;
    {
      absl::MutexLock lock(&mu_);
      if (!proposed_.has_value()) {
        // The step this rank is in: its collectives keep it within one step
        // of every other rank.
        proposed_ = finished_step_ + 1;
        proposal = proposed_;
        stop_kind_ = who->second == "shutdown" ? StopKind::kShutdown
                                               : StopKind::kCheckpointAndCancel;
        stop_by_ = who->first;
      }
    }
    if (proposal.has_value()) {
      if (absl::Status s = StoreSet(*store_, RankKey("stop_at", options_.rank),
                                    absl::StrCat(*proposal));
          !s.ok()) {
        return lost(s);
      }
    }
  }
  const auto now = Clock::now();
  for (int r = 0; r < world; ++r) {
    if (r == options_.rank) continue;
    const std::optional<std::string>& beat = v[2 + 2 * r];
    const bool done = v[3 + 2 * r].has_value();
    if (done) continue;
    if (beat.has_value() && beat->size() <= kMaxBeatBytes &&
        *beat != last_beat_[r]) {
      last_beat_[r] = *beat;
      last_moved_[r] = now;
    } else if (now - last_moved_[r] > options_.timeout) {
      return Abort(absl::UnavailableError(absl::StrCat(
          "rank ", r, " stopped responding: no heartbeat for ",
          options_.timeout.count() / 1000,
          " s (distributed.collective_timeout_s; killed, stopped or "
          "unreachable)")));
    }
  }
}

bool JobControl::Interrupted() const { return interrupted_.load(); }

absl::Status JobControl::status() const {
  absl::MutexLock lock(&mu_);
  return status_;
}

absl::Status JobControl::AwaitStatus(std::chrono::milliseconds max_wait) const {
  absl::MutexLock lock(&mu_);
  auto decided = [this]()
                     ABSL_SHARED_LOCKS_REQUIRED(mu_) { return !status_.ok(); };
  mu_.AwaitWithTimeout(absl::Condition(&decided), absl::FromChrono(max_wait));
  return status_;
}

void JobControl::RequestStop(StopKind kind) {
  std::optional<int64_t> proposal;
  {
    absl::MutexLock lock(&mu_);
    if (local_stop_.has_value()) return;
    local_stop_ = kind;
  }
  absl::StatusOr<std::string> held = StoreSetOnce(
      *store_, "stop", absl::StrCat(options_.rank, "\t", KindName(kind)), 64);
  if (!held.ok()) {
    Abort(absl::UnavailableError(held.status().message()));
    return;
  }
  // Propose at once rather than at the watchdog's next round, so a stop
  // asked for at a step's end can be that step.
  std::optional<std::pair<int, std::string>> who =
      ParseRankAndText(*held, options_.world_size);
  {
    absl::MutexLock lock(&mu_);
    if (!proposed_.has_value()) {
      proposed_ = finished_step_ + 1;
      proposal = proposed_;
      stop_by_ = who.has_value() ? who->first : options_.rank;
      stop_kind_ = (who.has_value() && who->second == "shutdown")
                       ? StopKind::kShutdown
                       : kind;
    }
  }
  if (proposal.has_value()) {
    if (absl::Status s = StoreSet(*store_, RankKey("stop_at", options_.rank),
                                  absl::StrCat(*proposal));
        !s.ok()) {
      Abort(absl::UnavailableError(s.message()));
    }
  }
  cv_.SignalAll();
}

StopDecision JobControl::Decide(int64_t step) {
  StopDecision decision;
  {
    absl::MutexLock lock(&mu_);
    finished_step_ = step;
    if (!status_.ok()) {
      decision.action = StopDecision::kAbort;
      return decision;
    }
    if (!proposed_.has_value()) return decision;
    decision.kind = *stop_kind_;
    decision.requested_by = stop_by_;
  }
  // Every rank's proposal, then the largest: every rank stops after it.
  // A rank that finished the job (done/<r>) proposes nothing: it stopped
  // after the last step, which no agreed step can pass.
  const int world = options_.world_size;
  std::vector<std::string> keys;
  for (int r = 0; r < world; ++r) keys.push_back(RankKey("stop_at", r));
  for (int r = 0; r < world; ++r) keys.push_back(RankKey("done", r));
  const auto deadline = Clock::now() + options_.timeout;
  while (true) {
    if (interrupted_.load()) {
      decision.action = StopDecision::kAbort;
      return decision;
    }
    absl::StatusOr<std::vector<std::optional<std::string>>> got =
        StoreGetIfSet(*store_, keys, kMaxBeatBytes);
    if (!got.ok()) {
      Abort(absl::UnavailableError(got.status().message()));
      decision.action = StopDecision::kAbort;
      return decision;
    }
    std::vector<int> missing;
    int64_t agreed = 0;
    for (int r = 0; r < world; ++r) {
      int64_t value = 0;
      if ((*got)[world + r].has_value()) continue;  // done
      if (!(*got)[r].has_value()) {
        missing.push_back(r);
      } else if (!absl::SimpleAtoi(*(*got)[r], &value) || value < 0) {
        Abort(absl::FailedPreconditionError(
            absl::StrCat("rank ", r, " proposed a malformed stop step")));
        decision.action = StopDecision::kAbort;
        return decision;
      } else {
        agreed = std::max(agreed, value);
      }
    }
    if (missing.empty()) {
      if (step >= agreed) decision.action = StopDecision::kStopWithCheckpoint;
      return decision;
    }
    if (Clock::now() >= deadline) {
      Abort(absl::UnavailableError(
          absl::StrCat("ranks ", absl::StrJoin(missing, ", "),
                       " did not agree on a stop step within ",
                       options_.timeout.count() / 1000,
                       " s (distributed.collective_timeout_s)")));
      decision.action = StopDecision::kAbort;
      return decision;
    }
    std::this_thread::sleep_for(kPoll);
  }
}

void JobControl::Fail(const absl::Status& why) {
  {
    absl::MutexLock lock(&mu_);
    if (!status_.ok()) return;  // stopping because of another rank
  }
  std::string message(why.message().substr(0, kMaxMessageBytes));
  std::replace(message.begin(), message.end(), '\n', ' ');
  StoreSetOnce(*store_, "abort",
               absl::StrCat(options_.rank, "\t",
                            absl::IsCancelled(why) ? "cancelled" : "failed",
                            "\t", message),
               kMaxAbortBytes)
      .IgnoreError();  // a lost store: the others notice it themselves
}

void JobControl::Finish() {
  StoreSet(*store_, RankKey("done", options_.rank), "1").IgnoreError();
  if (options_.rank == 0) {
    // The store lives here: keep it until every rank is done with it, so
    // they read why the job ended rather than lose the store. When the job
    // was interrupted (a rank may be dead and never say it is done), only
    // long enough for the others' next look at the store.
    std::vector<std::string> keys;
    for (int r = 0; r < options_.world_size; ++r)
      keys.push_back(RankKey("done", r));
    auto deadline = Clock::now() + options_.timeout;
    while (Clock::now() < deadline) {
      if (interrupted_.load()) {
        deadline = std::min(deadline, Clock::now() + 3 * interval_);
      }
      absl::StatusOr<std::vector<std::optional<std::string>>> got =
          StoreGetIfSet(*store_, keys, kMaxBeatBytes);
      if (!got.ok()) break;
      if (std::all_of(got->begin(), got->end(),
                      [](const auto& v) { return v.has_value(); }))
        break;
      std::this_thread::sleep_for(kPoll * 5);
    }
  }
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  cv_.SignalAll();
}

}  // namespace stronghold::core::dist
