#include "storage/fault_injecting_block_device.h"

#include <glog/logging.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/io_status.h"

namespace stronghold::storage {

FaultInjectingBlockDevice::FaultInjectingBlockDevice(
    std::unique_ptr<BlockDevice> base)
    : base_(std::move(base)) {}

FaultInjectingBlockDevice::~FaultInjectingBlockDevice() {
  // Batches nobody waited for still own requests on the base device.
  absl::MutexLock lock(&mu_);
  for (auto& [ticket, batch] : batches_) {
    if (batch.base_ticket) base_->Wait(*batch.base_ticket).IgnoreError();
  }
}

void FaultInjectingBlockDevice::FailNthWrite(int64_t n, int err) {
  absl::MutexLock lock(&mu_);
  fail_write_at_ = writes_seen_ + n;
  fail_write_errno_ = err;
}

void FaultInjectingBlockDevice::TearNthWrite(int64_t n, Tear mode) {
  absl::MutexLock lock(&mu_);
  tear_write_at_ = writes_seen_ + n;
  tear_mode_ = mode;
}

void FaultInjectingBlockDevice::FailNthRead(int64_t n, int err) {
  absl::MutexLock lock(&mu_);
  fail_read_at_ = reads_seen_ + n;
  fail_read_errno_ = err;
}

void FaultInjectingBlockDevice::FailAllReads() {
  absl::MutexLock lock(&mu_);
  fail_all_reads_ = true;
}

void FaultInjectingBlockDevice::SetSpaceLimit(int64_t limit) {
  absl::MutexLock lock(&mu_);
  space_limit_ = limit;
}

void FaultInjectingBlockDevice::ClearFaults() {
  absl::MutexLock lock(&mu_);
  fail_write_at_ = tear_write_at_ = fail_read_at_ = 0;
  fail_all_reads_ = false;
  space_limit_ = -1;
}

int64_t FaultInjectingBlockDevice::writes_seen() const {
  absl::MutexLock lock(&mu_);
  return writes_seen_;
}

int64_t FaultInjectingBlockDevice::reads_seen() const {
  absl::MutexLock lock(&mu_);
  return reads_seen_;
}

std::string FaultInjectingBlockDevice::Describe() const {
  return absl::StrCat("fault-injecting wrapper of ", base_->Describe());
}

absl::StatusOr<IoTicket> FaultInjectingBlockDevice::DoSubmit(
    absl::Span<const IoRequest> requests) {
  std::vector<IoRequest> passed;
  Batch batch;
  absl::MutexLock lock(&mu_);
  for (const IoRequest& r : requests) {
    // Injected errors read like the backend's own: the file and the offset
    // in it where the request starts, marked as injected.
    const auto inject = [&](auto&& make_error) {
      if (!batch.injected.ok()) return;
      const IoLocation where = base_->Locate(r.offset);
      const std::string file = absl::StrCat(where.file, " (injected fault)");
      batch.injected =
          make_error(IoTarget{file, where.file_bytes}, where.offset);
    };
    const auto errno_error = [&](int err) {
      inject([&](const IoTarget& target, int64_t offset) {
        return IoErrnoError(r.op, target, offset, r.bytes, err);
      });
    };
    if (r.op == IoOp::kRead) {
      const int64_t n = ++reads_seen_;
      if (fail_all_reads_ || n == fail_read_at_) {
        errno_error(fail_all_reads_ ? EIO : fail_read_errno_);
        continue;
      }
      passed.push_back(r);
      continue;
    }
    const int64_t n = ++writes_seen_;
    if (n == fail_write_at_) {
      errno_error(fail_write_errno_);
      continue;
    }
    if (space_limit_ >= 0 && r.offset + r.bytes > space_limit_) {
      errno_error(ENOSPC);
      continue;
    }
    if (n == tear_write_at_) {
      const int64_t align = base_->alignment();
      const int64_t half = r.bytes / 2 / align * align;
      if (half > 0) passed.push_back({r.op, r.offset, half, r.buffer});
      if (tear_mode_ == Tear::kShortTransfer) {
        inject([&](const IoTarget& target, int64_t offset) {
          return CheckTransfer(r.op, target, offset, r.bytes, half);
        });
      }
      continue;
    }
    passed.push_back(r);
  }
  if (!passed.empty()) {
    absl::StatusOr<IoTicket> base_ticket = base_->Submit(passed);
    if (!base_ticket.ok()) return base_ticket.status();
    batch.base_ticket = *base_ticket;
  }
  const IoTicket ticket = next_ticket_++;
  batches_.emplace(ticket, std::move(batch));
  return ticket;
}

absl::Status FaultInjectingBlockDevice::DoWait(IoTicket ticket) {
  Batch batch;
  {
    absl::MutexLock lock(&mu_);
    auto it = batches_.find(ticket);
    if (it == batches_.end()) {
      return absl::InvalidArgumentError("unknown or already waited-for ticket");
    }
    batch = std::move(it->second);
    batches_.erase(it);
  }
  absl::Status status =
      batch.base_ticket ? base_->Wait(*batch.base_ticket) : absl::OkStatus();
  return batch.injected.ok() ? status : batch.injected;
}

}  // namespace stronghold::storage
