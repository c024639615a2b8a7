// Streams spilled training state between the NVMe tier and a bounded set of
// host staging slots, in the order the engine will need it.
//
// The state is a list of items (say, layer i's Adam moments m and v), each a
// few arrays stored as checksummed extents (extent_store.h). Host memory for
// them is only `staging_slots` slots, each big enough for the largest item.
// The engine knows its order ahead of time (backward: the last layer is
// updated first), so it calls Prefetch(order) at the start of a step; reads
// start at once into free slots. Before updating an item it calls Acquire()
// (normally the data is there already), and after the update Release(),
// which writes the item back; the slot is free again when that write has
// completed. A background thread reaps completions and starts the next reads
// as slots free up, so reads of the next items overlap the update of this
// one and the write-back of the last.
//
//   Prefetch(order) -> [read] -> kReady -> Acquire -> kHeld -> Release ->
//   [write] -> kCached (or kReady again, if the item was wanted meanwhile)
//
// A cached slot still holds the item as written: a later Prefetch, Acquire
// or StartArrayRead of that item takes it from there without a read, and
// any of them may take the slot over for another item (it is free).
//
// Errors: a failed read is returned by the Acquire of that item; a failed
// write is sticky (every later Acquire, Release and Flush returns it), since
// what is on the device is unknown. Both name the extent and the device
// error (file, offset, errno).
//
// Thread-safe. Acquire/Release of one item must come from one thread at a
// time; an item must be released before it is acquired again.
#ifndef STRONGHOLD_STORAGE_SPILL_STREAMER_H_
#define STRONGHOLD_STORAGE_SPILL_STREAMER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "storage/aligned_buffer.h"
#include "storage/extent_store.h"

namespace stronghold::storage {

struct SpillItem {
  std::string name;                  // "layer3", for extent names and errors
  std::vector<std::string> arrays;   // "exp_avg", "exp_avg_sq", "master"
  std::vector<int64_t> array_bytes;  // same length as arrays
  // Staging (Prefetch/Acquire) reads only the first `staged_arrays` arrays
  // (-1: all); the holder writes the others before Release (say, a working
  // copy the update derives). Read, Write and StartArrayRead reach all.
  int staged_arrays = -1;
};

struct SpillStreamerOptions {
  // Host slots, each holding one item. Two let the next item's read overlap
  // this item's update; a third lets the last item's write-back overlap
  // both. More help only when I/O is bursty.
  int staging_slots = 3;
};

class SpillStreamer {
 public:
  // Allocates the extents and the staging slots (registered with the device
  // for io_uring's fixed buffers). Items start unwritten: Write() each before
  // the first Prefetch/Acquire.
  static absl::StatusOr<std::unique_ptr<SpillStreamer>> Create(
      ExtentStore* store, std::vector<SpillItem> items,
      const SpillStreamerOptions& options);
  // Host bytes the staging slots take for `items` (for the memory plan).
  static int64_t StagingBytes(const std::vector<SpillItem>& items, int slots,
                              int64_t alignment);
  // Device bytes the items' extents take (for the memory plan).
  static int64_t DeviceBytes(const std::vector<SpillItem>& items,
                             int64_t alignment, int64_t block_bytes);

  // Waits for the I/O in flight (errors are dropped: call Flush() first).
  ~SpillStreamer();
  SpillStreamer(const SpillStreamer&) = delete;
  SpillStreamer& operator=(const SpillStreamer&) = delete;

  // Synchronous whole-item transfers outside the pipeline, through a private
  // bounce buffer: initial state, checkpoints, restores. The item must not be
  // acquired. `arrays[k]` holds array_bytes[k] bytes (any alignment); a null
  // arrays[k] leaves that array alone (a checkpoint moves a layer's masters
  // and its moments at different times).
  absl::Status Write(int item, absl::Span<const void* const> arrays);
  absl::Status Read(int item, absl::Span<void* const> arrays);
  // The same without the bounce buffer, for a caller whose arrays are
  // aligned to the device's alignment and hold array_bytes[k] rounded up
  // to it (the trainer's planned checkpoint staging): transferred in place,
  // so these take no host memory of their own. INVALID_ARGUMENT for a
  // misaligned array (nothing transferred).
  absl::Status WritePadded(int item, absl::Span<const void* const> arrays);
  absl::Status ReadPadded(int item, absl::Span<void* const> arrays);

  // Reads array `array` of `item` straight into `buffer`, beside the
  // staging slots, for a reader that only looks at it (the engine's H2D
  // source). `buffer` is aligned to the device's alignment and holds the
  // array's bytes rounded up to it. If a slot holds the item's newest data
  // (staged, or being written back), it is copied from there and the ticket
  // is 0. FAILED_PRECONDITION while the item is acquired. The caller must
  // not write or release the item before FinishArrayRead. The background
  // thread reaps the read and verifies its checksums, off the caller's path.
  absl::StatusOr<uint64_t> StartArrayRead(int item, int array, void* buffer);
  // Waits for a StartArrayRead (0: done already); its outcome.
  absl::Status FinishArrayRead(uint64_t read);

  // The items to stage next, in order (replaces the previous order). Reads
  // start now as far as free slots allow.
  void Prefetch(absl::Span<const int> order);
  // Blocks until `item` is staged (reading it now if it was not queued) and
  // returns its arrays in staging, valid until Release(item).
  absl::StatusOr<std::vector<void*>> Acquire(int item);
  // Starts writing the item back from staging.
  absl::Status Release(int item);
  // Waits until no read or write is in flight; the sticky write error.
  absl::Status Flush();

  int items() const { return static_cast<int>(items_.size()); }
  int64_t staging_bytes() const { return staging_.size(); }

  // Payload bytes (checksum trailers not counted) the pipeline moved so
  // far: staged by Prefetch/Acquire and StartArrayRead from the device
  // (`read`) or from a slot that held the item already (`reused`: just
  // written back, or cached), and written back by Release (`written`). The
  // synchronous Read and Write, outside the pipeline, are not counted.
  struct Traffic {
    int64_t read = 0;
    int64_t written = 0;
    int64_t reused = 0;
  };
  Traffic traffic() const;

 private:
  // Write/Read and their padded forms: `padded` transfers in place.
  absl::Status WriteItem(int item, absl::Span<const void* const> arrays,
                         bool padded);
  absl::Status ReadItem(int item, absl::Span<void* const> arrays, bool padded);
  // INVALID_ARGUMENT naming the first non-null array of `item` that is not
  // aligned to the device's alignment.
  absl::Status CheckPadded(int item,
                           absl::Span<const void* const> arrays) const;
  enum class SlotState { kFree, kReading, kReady, kHeld, kWriting, kCached };
  struct Slot {
    SlotState state = SlotState::kFree;
    int item = -1;
    char* data = nullptr;
    IoTicket ticket = 0;  // of the read or write in flight
    bool wanted = false;  // kWriting: becomes kReady, not kCached, when done
    absl::Status status;  // kReady: the read's outcome
  };
  // A StartArrayRead in flight, or reaped (done) and not yet finished.
  struct ArrayRead {
    IoTicket ticket = 0;
    bool done = false;
    absl::Status status;
  };
  // What the reaper waits for next: a slot's read or write, or an array read.
  struct InFlight {
    int slot = -1;            // >= 0: slots_[slot]
    uint64_t array_read = 0;  // else: array_reads_[array_read]
  };
  struct Item {
    SpillItem spec;
    std::vector<ExtentId> extents;
    std::vector<int64_t> offsets;  // of each array in a slot
  };

  SpillStreamer(ExtentStore* store, std::vector<Item> items, int64_t slot_bytes,
                int slots);

  int SlotOfLocked(int item) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A free slot, giving up a cached copy if there is no other; -1 if none.
  int FreeSlotLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts reads for the front of order_ while slots are free.
  void StartReadsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The extents of `item` that `op` moves through a slot: all for writes,
  // the staged ones for reads.
  std::vector<ExtentIo> Ios(IoOp op, int item, char* data) const;
  int64_t ItemBytes(IoOp op, int item) const;
  void Reap();

  // Constant after construction.
  ExtentStore* const store_;
  const std::vector<Item> items_;
  const int64_t slot_bytes_;
  AlignedBuffer staging_;

  mutable absl::Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<int> order_ ABSL_GUARDED_BY(mu_);           // items to stage
  std::deque<InFlight> in_flight_ ABSL_GUARDED_BY(mu_);  // oldest first
  absl::flat_hash_map<uint64_t, ArrayRead> array_reads_ ABSL_GUARDED_BY(mu_);
  uint64_t next_array_read_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t changes_ ABSL_GUARDED_BY(mu_) = 0;  // completions so far
  int writes_starting_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status write_error_ ABSL_GUARDED_BY(mu_);
  Traffic traffic_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_SPILL_STREAMER_H_
