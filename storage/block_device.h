// A block device: the NVMe tier's only view of secondary storage.
//
// Byte-addressed, fixed-capacity space read and written in aligned pieces,
// asynchronously: a caller submits a batch of requests, gets a ticket, keeps
// computing, and later waits on the ticket. The training engine knows the
// order in which layers are needed, so it submits the reads of the next
// layers' state while the optimizer works on this one.
//
// Implementations (created by the factories in block_device_factory.h,
// memory_block_device.h and fault_injecting_block_device.h):
//   io_uring   liburing, O_DIRECT, registered files and buffers, striped
//              over several files (one per --ssd_dir);
//   pread      a thread pool doing pread/pwrite on the same files, chosen
//              automatically when io_uring cannot be set up;
//   memory     a heap buffer, for tests;
//   faulty     a wrapper that injects EIO, torn writes and ENOSPC.
// All of them pass tests/storage/block_device_conformance_test.cc.
//
// Errors. Every completion is checked: a negative result or a short transfer
// is an error naming the file, offset and errno. Write errors are sticky: once
// a batch that contains a write fails, what is on the device is unknown, so
// every later batch containing a write and every Sync() fails with that same
// error (reads still run; the caller decides what to trust). ENOSPC and EDQUOT
// are RESOURCE_EXHAUSTED and say how much space the device needed.
//
// The device does not checksum; storage/extent_store.h adds CRC32C per block.
#ifndef STRONGHOLD_STORAGE_BLOCK_DEVICE_H_
#define STRONGHOLD_STORAGE_BLOCK_DEVICE_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace stronghold::storage {

enum class IoOp { kRead, kWrite };

absl::string_view IoOpName(IoOp op);  // "read" / "write"

// One transfer. offset and bytes must be multiples of the device's
// alignment(), buffer must be aligned to it, and [offset, offset + bytes)
// must lie within capacity(). The buffer is the caller's and must stay valid
// (and, for writes, unchanged) until the batch's Wait() returns.
struct IoRequest {
  IoOp op = IoOp::kRead;
  int64_t offset = 0;      // device byte offset
  int64_t bytes = 0;       // > 0
  void* buffer = nullptr;  // destination of reads, source of writes
};

// A memory region the caller will use for I/O (see RegisterBuffers()).
struct IoBuffer {
  void* data = nullptr;
  int64_t bytes = 0;
};

// Where a device byte lives, for error messages that name the file.
struct IoLocation {
  std::string file;        // the file's path, or the backend's name ("memory")
  int64_t offset = 0;      // byte offset within that file
  int64_t file_bytes = 0;  // the bytes that file must hold (for ENOSPC)
};

// Identifies a submitted batch until it is waited for.
using IoTicket = uint64_t;

// Thread-safe: any thread may submit, and any thread may wait for any ticket
// (each ticket exactly once). A device must outlive its in-flight batches;
// destroying it waits for the I/O still running.
class BlockDevice {
 public:
  BlockDevice() = default;
  BlockDevice(const BlockDevice&) = delete;
  BlockDevice& operator=(const BlockDevice&) = delete;
  virtual ~BlockDevice() = default;

  // "io_uring", "pread", "memory" or "faulty".
  virtual absl::string_view backend() const = 0;
  // One line for logs: backend, files, capacity, options.
  virtual std::string Describe() const = 0;
  // Required alignment of offsets, lengths and buffer addresses, in bytes
  // (a power of two; 4096 for the file backends).
  virtual int64_t alignment() const = 0;
  // Usable bytes, [0, capacity()).
  virtual int64_t capacity() const = 0;
  // Where device byte `offset` lives (the stripe's file and the offset in
  // it). For wrappers that report errors of their own, such as the fault
  // injector, so that their messages name the file like real ones do.
  // Default: the backend's name, the device offset and capacity().
  virtual IoLocation Locate(int64_t offset) const {
    return {std::string(backend()), offset, capacity()};
  }

  // Validates and starts every request of the batch. On error nothing was
  // started: INVALID_ARGUMENT for misaligned or empty requests, OUT_OF_RANGE
  // for requests past capacity(), or the sticky write error for a batch that
  // writes. The requests may complete in any order; requests in one batch
  // must not overlap if one of them writes.
  absl::StatusOr<IoTicket> Submit(absl::Span<const IoRequest> requests);

  // Blocks until every request of the batch has completed (also when one
  // failed, so its buffers are free again) and returns OK or the first error.
  absl::Status Wait(IoTicket ticket);

  // Makes every write whose batch has been waited for durable (fdatasync).
  // Fails with the sticky error if a write failed before.
  absl::Status Sync();

  // Synchronous shorthands: one request, submitted and waited for.
  absl::Status Read(int64_t offset, void* buffer, int64_t bytes);
  absl::Status Write(int64_t offset, const void* buffer, int64_t bytes);

  // Announces the regions that later requests' buffers will lie in, so that
  // io_uring can pin them once (fixed buffers) instead of per request.
  // Replaces the previous set; call with no I/O in flight. A failure (for
  // example RLIMIT_MEMLOCK) is not fatal: I/O still works unregistered, and
  // the returned status says why registration did not happen. Backends that
  // gain nothing from it return OK.
  virtual absl::Status RegisterBuffers(absl::Span<const IoBuffer> buffers) {
    return absl::OkStatus();
  }

  // The sticky write error, OK while no write has failed.
  absl::Status sticky_error() const;

 protected:
  // Starts already-validated requests; returns a ticket DoWait() accepts.
  virtual absl::StatusOr<IoTicket> DoSubmit(
      absl::Span<const IoRequest> requests) = 0;
  virtual absl::Status DoWait(IoTicket ticket) = 0;
  virtual absl::Status DoSync() = 0;

 private:
  absl::Status Validate(absl::Span<const IoRequest> requests) const;

  mutable absl::Mutex mu_;
  absl::Status sticky_error_ ABSL_GUARDED_BY(mu_);
  // Tickets of in-flight batches that write: their failure becomes sticky.
  absl::flat_hash_set<IoTicket> writing_tickets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_BLOCK_DEVICE_H_
