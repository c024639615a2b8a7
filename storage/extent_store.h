// Checksummed extents on a block device: how the NVMe tier stores a layer's
// spilled state.
//
// An extent is a named, fixed-size byte range allocated once and then
// written and read whole, asynchronously, like the device below it. Every
// write stores, right behind the data and in the same batch, a checksum
// trailer: the CRC32C of each block of the data, the extent's identity and a
// generation number that grows with every write. Every read fetches the
// trailer too and verifies it before Wait() returns OK, so
//   a flipped bit          -> that block's CRC32C does not match,
//   a torn write           -> the unwritten part's CRC32C does not match,
//   a lost (dropped) write -> the trailer's generation is an old one,
//   a misdirected write    -> the trailer names another extent,
// and each is DATA_LOSS naming the extent, the block and the device offset.
//
// Device layout of one extent (offset aligned to the block size for extents
// of at least a block, so that blocks coincide with the device's stripes):
//   [data, rounded up to alignment][trailer: header, CRC32C per block, CRC32C
//   of the trailer, rounded up to alignment]
#ifndef STRONGHOLD_STORAGE_EXTENT_STORE_H_
#define STRONGHOLD_STORAGE_EXTENT_STORE_H_

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "storage/aligned_buffer.h"
#include "storage/block_device.h"

namespace stronghold::storage {

struct ExtentStoreOptions {
  // Bytes covered by one CRC32C. Matching the device's block size means one
  // checksum per I/O; smaller blocks locate corruption more precisely.
  int64_t block_bytes = 1 << 20;
};

using ExtentId = int;

struct ExtentInfo {
  std::string name;
  int64_t offset = 0;        // device offset of the data
  int64_t bytes = 0;         // payload bytes (what the caller stores)
  int64_t buffer_bytes = 0;  // bytes rounded up to the device alignment
  int64_t stored_bytes = 0;  // device bytes the extent occupies
};

// One extent transfer. The buffer must be aligned to the device's alignment
// and hold buffer_bytes; for writes the bytes past `bytes` are written as
// padding, for reads they are overwritten.
struct ExtentIo {
  IoOp op = IoOp::kRead;
  ExtentId extent = 0;
  void* buffer = nullptr;
};

// Thread-safe. Reads and writes of one extent must not overlap in time.
class ExtentStore {
 public:
  // `device` is not owned and must outlive the store.
  ExtentStore(BlockDevice* device, const ExtentStoreOptions& options);
  ~ExtentStore();
  ExtentStore(const ExtentStore&) = delete;
  ExtentStore& operator=(const ExtentStore&) = delete;

  // Device bytes an extent of `bytes` takes (data, trailer, placement
  // padding), for planning how large a device must be.
  static int64_t StoredBytes(int64_t bytes, int64_t alignment,
                             int64_t block_bytes);

  // Reserves an extent of `bytes` bytes. RESOURCE_EXHAUSTED, with the bytes
  // needed, when the device is too small.
  absl::StatusOr<ExtentId> Allocate(int64_t bytes, absl::string_view name);
  ExtentInfo info(ExtentId extent) const;
  // Device bytes taken by extents so far.
  int64_t allocated_bytes() const;
  BlockDevice* device() const { return device_; }

  // Starts a batch of extent transfers (with their trailers).
  // FAILED_PRECONDITION for reads of extents never written. Device errors
  // (here or from Wait) keep their code and get the extents' names in front.
  absl::StatusOr<IoTicket> Submit(absl::Span<const ExtentIo> ios);
  // Waits for the batch and verifies what it read; the first error.
  absl::Status Wait(IoTicket ticket);

  // Synchronous shorthands.
  absl::Status Write(ExtentId extent, const void* buffer);
  absl::Status Read(ExtentId extent, void* buffer);

 private:
  struct Extent {
    ExtentInfo info;
    int64_t blocks = 0;
    int64_t trailer_offset = 0;
    int64_t trailer_bytes = 0;
    uint64_t generation = 0;  // of the last write submitted; 0: never
  };
  struct PendingRead {
    ExtentId extent;
    uint64_t generation;  // expected in the trailer
    const char* data;
    AlignedBuffer trailer;
  };
  struct Batch {
    IoTicket device_ticket = 0;
    std::string what;  // "reading extents a, b", prefixed to device errors
    std::vector<PendingRead> reads;
    std::vector<AlignedBuffer> trailers;  // written ones, kept until done
  };

  // Fills `trailer` for a write of `data` at `generation`.
  void BuildTrailer(const Extent& e, ExtentId id, uint64_t generation,
                    const char* data, char* trailer) const;
  absl::Status Verify(const Extent& e, const PendingRead& read) const;
  // "device offset D = offset O of <file>", for corruption messages.
  std::string Where(int64_t device_offset) const;

  // Constant after construction.
  BlockDevice* const device_;
  const int64_t block_bytes_;

  mutable absl::Mutex mu_;
  std::vector<Extent> extents_ ABSL_GUARDED_BY(mu_);
  int64_t next_offset_ ABSL_GUARDED_BY(mu_) = 0;
  IoTicket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::unordered_map<IoTicket, Batch> batches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_EXTENT_STORE_H_
