// Per-step timeline of the engine: spans on four lanes (compute, H2D, D2H,
// optimizer) plus the waits the compute thread spent blocked, exportable as
// Chrome trace-event JSON (opens in Perfetto / chrome://tracing).
//
// Thread safety: Add() may be called from any thread.
#ifndef STRONGHOLD_CORE_DEVICE_TIMELINE_H_
#define STRONGHOLD_CORE_DEVICE_TIMELINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace stronghold::core {

enum class Lane : int {
  kCompute = 0,
  kH2D = 1,
  kD2H = 2,
  kOptimizer = 3,
  kWait = 4
};

struct Span {
  std::string name;  // "fwd", "bwd", "h2d", "d2h", "adamw", "wait_h2d", ...
  Lane lane = Lane::kCompute;
  int layer = -1;        // buffer index (0 = embedding), -1 = none
  int64_t start_ns = 0;  // steady clock
  int64_t end_ns = 0;
};

class Timeline {
 public:
  static int64_t NowNs();

  void Clear();
  // Removes the spans that ended before `ns` (steady clock).
  void DropBefore(int64_t ns);
  void Add(Span span);
  std::vector<Span> spans() const;
  // {"traceEvents": [...]} with one thread per lane, times in microseconds
  // from the first span.
  std::string ToChromeTraceJson() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<Span> spans_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_DEVICE_TIMELINE_H_
