// A block device wrapper that makes chosen requests fail the way disks do:
// an EIO on a write or read, a torn write (only part of the data reaches the
// disk, reported as a short transfer or, like a lying drive cache, reported
// as success), and a full disk (ENOSPC beyond a byte limit). Tests and the
// daemon's fault tests use it to prove that every such failure surfaces as
// an error naming what failed, never as silently wrong training state.
//
// Requests are counted as the wrapper sees them, 1-based from when a fault
// is armed; a fault fires once (except the space limit and FailAllReads).
// Thread-safe.
#ifndef STRONGHOLD_STORAGE_FAULT_INJECTING_BLOCK_DEVICE_H_
#define STRONGHOLD_STORAGE_FAULT_INJECTING_BLOCK_DEVICE_H_

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/block_device.h"

namespace stronghold::storage {

class FaultInjectingBlockDevice final : public BlockDevice {
 public:
  enum class Tear {
    kShortTransfer,  // the completion reports the short count: an error
    kSilent,         // the completion reports success: only checksums see it
  };

  explicit FaultInjectingBlockDevice(std::unique_ptr<BlockDevice> base);
  ~FaultInjectingBlockDevice() override;

  // The n-th write request from now fails with `err`; nothing is written.
  void FailNthWrite(int64_t n, int err = EIO);
  // The n-th write request from now writes only its first half (rounded down
  // to the alignment) and completes as `mode` says.
  void TearNthWrite(int64_t n, Tear mode);
  // The n-th read request from now fails with `err`; its buffer is untouched.
  void FailNthRead(int64_t n, int err = EIO);
  // Every read fails with EIO until ClearFaults().
  void FailAllReads();
  // Write requests that reach past byte `limit` fail with ENOSPC, as on a
  // disk that filled up (nothing of them is written).
  void SetSpaceLimit(int64_t limit);
  void ClearFaults();

  // Requests seen so far (including failed ones).
  int64_t writes_seen() const;
  int64_t reads_seen() const;

  BlockDevice* base() const { return base_.get(); }

  absl::string_view backend() const override { return "faulty"; }
  std::string Describe() const override;
  int64_t alignment() const override { return base_->alignment(); }
  int64_t capacity() const override { return base_->capacity(); }
  IoLocation Locate(int64_t offset) const override {
    return base_->Locate(offset);
  }
  absl::Status RegisterBuffers(absl::Span<const IoBuffer> buffers) override {
    return base_->RegisterBuffers(buffers);
  }

 protected:
  absl::StatusOr<IoTicket> DoSubmit(
      absl::Span<const IoRequest> requests) override;
  absl::Status DoWait(IoTicket ticket) override;
  absl::Status DoSync() override { return base_->Sync(); }

 private:
  struct Batch {
    std::optional<IoTicket> base_ticket;  // absent if nothing reached base_
    absl::Status injected;                // reported even if base_ succeeds
  };

  const std::unique_ptr<BlockDevice> base_;

  mutable absl::Mutex mu_;
  int64_t writes_seen_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reads_seen_ ABSL_GUARDED_BY(mu_) = 0;
  // Armed faults as absolute request numbers (0: none).
  int64_t fail_write_at_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_write_errno_ ABSL_GUARDED_BY(mu_) = EIO;
  int64_t tear_write_at_ ABSL_GUARDED_BY(mu_) = 0;
  Tear tear_mode_ ABSL_GUARDED_BY(mu_) = Tear::kShortTransfer;
  int64_t fail_read_at_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_read_errno_ ABSL_GUARDED_BY(mu_) = EIO;
  bool fail_all_reads_ ABSL_GUARDED_BY(mu_) = false;
  int64_t space_limit_ ABSL_GUARDED_BY(mu_) = -1;  // -1: none
  IoTicket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::unordered_map<IoTicket, Batch> batches_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_FAULT_INJECTING_BLOCK_DEVICE_H_
