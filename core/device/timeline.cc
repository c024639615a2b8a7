#include "core/device/timeline.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace stronghold::core {

int64_t Timeline::NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Timeline::Clear() {
  absl::MutexLock lock(&mu_);
  spans_.clear();
}

void Timeline::DropBefore(int64_t ns) {
  absl::MutexLock lock(&mu_);
  spans_.erase(std::remove_if(spans_.begin(), spans_.end(),
                              [ns](const Span& s) { return s.end_ns < ns; }),
               spans_.end());
}

void Timeline::Add(Span span) {
  absl::MutexLock lock(&mu_);
  spans_.push_back(std::move(span));
}

std::vector<Span> Timeline::spans() const {
  absl::MutexLock lock(&mu_);
  return spans_;
}

std::string Timeline::ToChromeTraceJson() const {
  static constexpr const char* kLaneNames[] = {
      "compute", "h2d copy", "d2h copy", "cpu optimizer", "compute waits"};
  const std::vector<Span> spans = this->spans();
  int64_t origin = INT64_MAX;
  for (const Span& s : spans) origin = std::min(origin, s.start_ns);
  std::string out = "{\"traceEvents\":[";
  for (int lane = 0; lane < 5; ++lane) {
    absl::StrAppend(
        &out, lane == 0 ? "" : ",",
        absl::StrFormat("{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_"
                        "name\",\"args\":{\"name\":\"%s\"}}",
                        lane, kLaneNames[lane]));
  }
  for (const Span& s : spans) {
    absl::StrAppend(
        &out,
        absl::StrFormat(",{\"ph\":\"X\",\"pid\":1,\"tid\":%d,\"name\":\"%s%s\","
                        "\"ts\":%.3f,\"dur\":%.3f,\"args\":{\"layer\":%d}}",
                        static_cast<int>(s.lane), s.name,
                        s.layer >= 0 ? absl::StrCat(" ", s.layer) : "",
                        (s.start_ns - origin) / 1e3,
                        (s.end_ns - s.start_ns) / 1e3, s.layer));
  }
  out += "],\"displayTimeUnit\":\"ms\"}";
  return out;
}

}  // namespace stronghold::core
