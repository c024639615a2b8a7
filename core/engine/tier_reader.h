// Reads what the windowed engine sends to the device but keeps on the NVMe
// tier (bf16/fp16 working copies, fp32 masters: HostBuffer::sent_array of
// spill_item) ahead of its use, into a ring of host buffers (pinned on
// CUDA) from which the H2D copies go.
//
// The engine knows each step's fetch order (forward 0..L-1, backward
// L-1-W..0, per micro-batch) and gives it to Plan(). Pump() starts reads for
// the next entries of that order, never blocking, as far as
//   - a ring buffer is free: the H2D that last read it has completed
//     (Device::Done), and
//   - the entry's buffer has no update pending (`ready(b)`): its newest data
//     is on the tier (or in the streamer's staging, which is copied).
// Reads are started in order; an entry that is not ready holds back those
// behind it. Take(b) returns the data of the next entry, waiting for its read
// (starting it now if Pump did not), and Sent(event) hands its ring buffer
// back once the H2D from it is queued. A Take out of the planned order is
// still served (synchronously, after the reads in flight); `unplanned`
// counts them, so tests can hold the engine to its plan.
//
// Thread safety: the engine thread only.
#ifndef STRONGHOLD_CORE_ENGINE_TIER_READER_H_
#define STRONGHOLD_CORE_ENGINE_TIER_READER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/device/device.h"
#include "storage/block_device.h"

namespace stronghold::storage {
class SpillStreamer;
}  // namespace stronghold::storage

namespace stronghold::core {

class TierReader {
 public:
  // Where buffer b's H2D source lives: array `array` of streamer item
  // `item`, `bytes` long; item < 0: not on the tier.
  struct Source {
    int item = -1;
    int array = 0;
    int64_t bytes = 0;
  };
  struct Stats {
    int64_t read_bytes = 0;  // read from the tier (or copied from staging)
    double wait_s = 0.0;     // the engine blocked in Take
    int64_t unplanned = 0;   // Takes out of the planned order
  };

  // Bytes of one ring buffer for sources of up to `largest_source_bytes`
  // (0 without sources: no ring).
  static int64_t RingEntryBytes(int64_t largest_source_bytes);
  // `ring` host buffers, each RingEntryBytes(the largest source), from
  // `device` (not owned; nor is `spill`).
  static absl::StatusOr<std::unique_ptr<TierReader>> Create(
      Device* device, storage::SpillStreamer* spill,
      std::vector<Source> sources, int ring);
  // Waits for the reads in flight; frees the ring.
  ~TierReader();
  TierReader(const TierReader&) = delete;
  TierReader& operator=(const TierReader&) = delete;

  // Whether any source is on the tier (else every call is a no-op).
  bool active() const { return !ring_.empty(); }
  bool on_tier(int b) const {
    return b >= 0 && b < static_cast<int>(sources_.size()) &&
           sources_[b].item >= 0;
  }

  // The buffers the engine will Take, in order (buffers not on the tier are
  // left out). Reads of the previous plan not taken are waited for and
  // dropped. Then pumps.
  void Plan(std::vector<int> order, const std::function<bool(int)>& ready);
  // Starts reads for the next planned entries (see above); never blocks.
  void Pump(const std::function<bool(int)>& ready);
  // Buffer b's data, valid until the H2D queued from it completes. The
  // caller has waited for b's pending update. A failed read is kept in
  // *error (the first one) and the buffer's content is then undefined.
  const void* Take(int b, absl::Status* error);
  // The H2D from the last Take's buffer was queued; `h2d` marks its end.
  void Sent(Event h2d);

  // Since Create.
  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    void* data = nullptr;
    Event last_h2d;       // the last copy that read `data`
    uint64_t ticket = 0;  // of the read in flight into it
    bool reading = false;
    absl::Status error;  // the read could not even start
  };

  TierReader(Device* device, storage::SpillStreamer* spill,
             std::vector<Source> sources)
      : device_(device), spill_(spill), sources_(std::move(sources)) {}

  // Starts the read of planned position k into its ring entry.
  void Start(int64_t k);
  // Waits for every read in flight (errors dropped: nobody takes them).
  void Drop();

  Device* const device_;
  storage::SpillStreamer* const spill_;
  const std::vector<Source> sources_;
  std::vector<Entry> ring_;  // position k of the plan uses ring_[k % size]
  std::vector<int> order_;
  int64_t started_ = 0;  // positions whose read has started
  int64_t taken_ = 0;    // positions taken
  int64_t sent_ = 0;     // positions whose H2D is queued
  Stats stats_;
};

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_ENGINE_TIER_READER_H_
