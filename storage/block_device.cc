#include "storage/block_device.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace stronghold::storage {

absl::string_view IoOpName(IoOp op) {
  return op == IoOp::kRead ? "read" : "write";
}

absl::Status BlockDevice::Validate(absl::Span<const IoRequest> requests) const {
  const int64_t align = alignment();
  const int64_t cap = capacity();
  for (size_t i = 0; i < requests.size(); ++i) {
    const IoRequest& r = requests[i];
    const auto where = [&] {
      return absl::StrCat(IoOpName(r.op), " request ", i, " (offset ", r.offset,
                          ", ", r.bytes, " bytes)");
    };
    if (r.buffer == nullptr || r.bytes <= 0 || r.offset < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), ": needs a buffer, bytes > 0 and offset >= 0"));
    }
    if (r.offset % align != 0 || r.bytes % align != 0 ||
        reinterpret_cast<uintptr_t>(r.buffer) % align != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), ": offset, length and buffer address must be multiples of ",
          "the device's alignment of ", align, " bytes"));
    }
    if (r.offset > cap || r.bytes > cap - r.offset) {
      return absl::OutOfRangeError(absl::StrCat(
          where(), ": past the end of the device (capacity ", cap, " bytes)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<IoTicket> BlockDevice::Submit(
    absl::Span<const IoRequest> requests) {
  if (absl::Status s = Validate(requests); !s.ok()) return s;
  bool writes = false;
  for (const IoRequest& r : requests) writes |= r.op == IoOp::kWrite;
  if (writes) {
    absl::MutexLock lock(&mu_);
    if (!sticky_error_.ok()) return sticky_error_;
  }
  absl::StatusOr<IoTicket> ticket = DoSubmit(requests);
  if (writes) {
    absl::MutexLock lock(&mu_);
    if (ticket.ok()) {
      writing_tickets_.insert(*ticket);
    } else if (sticky_error_.ok()) {
      // Some writes may have started before the failure.
      sticky_error_ = ticket.status();
    }
  }
  return ticket;
}

absl::Status BlockDevice::Wait(IoTicket ticket) {
  absl::Status status = DoWait(ticket);
  absl::MutexLock lock(&mu_);
  // A failed batch that wrote leaves the device in an unknown state.
  if (writing_tickets_.erase(ticket) > 0 && !status.ok() &&
      sticky_error_.ok()) {
    sticky_error_ = status;
  }
  return status;
}

absl::Status BlockDevice::Sync() {
  {
    absl::MutexLock lock(&mu_);
    if (!sticky_error_.ok()) return sticky_error_;
  }
  absl::Status status = DoSync();
  if (!status.ok()) {
    absl::MutexLock lock(&mu_);
    if (sticky_error_.ok()) sticky_error_ = status;
  }
  return status;
}

absl::Status BlockDevice::Read(int64_t offset, void* buffer, int64_t bytes) {
  const IoRequest request{IoOp::kRead, offset, bytes, buffer};
  absl::StatusOr<IoTicket> ticket = Submit({&request, 1});
  if (!ticket.ok()) return ticket.status();
  return Wait(*ticket);
}

absl::Status BlockDevice::Write(int64_t offset, const void* buffer,
                                int64_t bytes) {
  const IoRequest request{IoOp::kWrite, offset, bytes,
                          const_cast<void*>(buffer)};
  absl::StatusOr<IoTicket> ticket = Submit({&request, 1});
  if (!ticket.ok()) return ticket.status();
  return Wait(*ticket);
}

absl::Status BlockDevice::sticky_error() const {
  absl::MutexLock lock(&mu_);
  return sticky_error_;
}

}  // namespace stronghold::storage
