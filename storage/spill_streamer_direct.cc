// SpillStreamer's transfers beside its staging pipeline (storage/
// spill_streamer.h): the synchronous whole-item Write and Read through a
// private bounce buffer (initial state, checkpoints, restores), and
// StartArrayRead/FinishArrayRead of one array straight into a caller's
// buffer (the engine's H2D source). The pipeline itself (Prefetch, Acquire,
// Release, the reaper) is spill_streamer.cc.
#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/aligned_buffer.h"
#include "storage/spill_streamer.h"

namespace stronghold::storage {

absl::Status SpillStreamer::Write(int item,
                                  absl::Span<const void* const> arrays) {
  return WriteItem(item, arrays, /*padded=*/false);
}

absl::Status SpillStreamer::Read(int item, absl::Span<void* const> arrays) {
  return ReadItem(item, arrays, /*padded=*/false);
}

absl::Status SpillStreamer::WritePadded(int item,
                                        absl::Span<const void* const> arrays) {
  return WriteItem(item, arrays, /*padded=*/true);
}

absl::Status SpillStreamer::ReadPadded(int item,
                                       absl::Span<void* const> arrays) {
  return ReadItem(item, arrays, /*padded=*/true);
}

absl::Status SpillStreamer::CheckPadded(
    int item, absl::Span<const void* const> arrays) const {
  const Item& it = items_[item];
  const int64_t align = store_->device()->alignment();
  for (size_t k = 0; k < it.extents.size() && k < arrays.size(); ++k) {
    if (reinterpret_cast<uintptr_t>(arrays[k]) % align != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(it.spec.name, ".", it.spec.arrays[k],
                       ": buffer not aligned to ", align, " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status SpillStreamer::WriteItem(int item,
                                      absl::Span<const void* const> arrays,
                                      bool padded) {
  if (item < 0 || item >= items()) {
    return absl::InvalidArgumentError(absl::StrCat("no spill item ", item));
  }
  if (padded) {
    if (absl::Status s = CheckPadded(item, arrays); !s.ok()) return s;
  }
  const Item& it = items_[item];
  {
    absl::MutexLock lock(&mu_);
    if (!write_error_.ok()) return write_error_;
    // A staged copy would go stale: wait for its I/O, then drop it.
    const auto quiet = [this, item]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      const int s = SlotOfLocked(item);
      return s < 0 || slots_[s].state == SlotState::kReady ||
             slots_[s].state == SlotState::kCached ||
             slots_[s].state == SlotState::kHeld;
    };
    mu_.Await(absl::Condition(&quiet));
    const int s = SlotOfLocked(item);
    if (s >= 0 && slots_[s].state == SlotState::kHeld) {
      return absl::FailedPreconditionError(
          absl::StrCat(it.spec.name, " is acquired"));
    }
    if (s >= 0) {
      slots_[s].state = SlotState::kFree;
      slots_[s].item = -1;
      StartReadsLocked();
    }
  }
  for (size_t k = 0; k < it.extents.size(); ++k) {
    if (arrays[k] == nullptr) continue;
    const int64_t bytes = it.spec.array_bytes[k];
    AlignedBuffer bounce;
    if (!padded) {
      bounce = AlignedBuffer(bytes, store_->device()->alignment());
      std::memcpy(bounce.data(), arrays[k], bytes);
    }
    absl::Status status =
        store_->Write(it.extents[k], padded ? arrays[k] : bounce.data());
    if (!status.ok()) {
      absl::MutexLock lock(&mu_);
      if (write_error_.ok()) write_error_ = status;
      return status;
    }
  }
  return absl::OkStatus();
}

absl::Status SpillStreamer::ReadItem(int item, absl::Span<void* const> arrays,
                                     bool padded) {
  if (item < 0 || item >= items()) {
    return absl::InvalidArgumentError(absl::StrCat("no spill item ", item));
  }
  if (padded) {
    const std::vector<const void*> in(arrays.begin(), arrays.end());
    if (absl::Status s = CheckPadded(item, in); !s.ok()) return s;
  }
  const Item& it = items_[item];
  {
    // The device holds the newest data once no write-back of it is pending.
    absl::MutexLock lock(&mu_);
    const auto written = [this, item]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      const int s = SlotOfLocked(item);
      return s < 0 || slots_[s].state != SlotState::kWriting;
    };
    mu_.Await(absl::Condition(&written));
    const int s = SlotOfLocked(item);
    if (s >= 0 && slots_[s].state == SlotState::kHeld) {
      return absl::FailedPreconditionError(
          absl::StrCat(it.spec.name, " is acquired"));
    }
  }
  for (size_t k = 0; k < it.extents.size(); ++k) {
    if (arrays[k] == nullptr) continue;
    if (padded) {
      absl::Status status = store_->Read(it.extents[k], arrays[k]);
      if (!status.ok()) return status;
      continue;
    }
    const int64_t bytes = it.spec.array_bytes[k];
    AlignedBuffer bounce(bytes, store_->device()->alignment());
    absl::Status status = store_->Read(it.extents[k], bounce.data());
    if (!status.ok()) return status;
    std::memcpy(arrays[k], bounce.data(), bytes);
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> SpillStreamer::StartArrayRead(int item, int array,
                                                       void* buffer) {
  if (item < 0 || item >= items()) {
    return absl::InvalidArgumentError(absl::StrCat("no spill item ", item));
  }
  const Item& it = items_[item];
  if (array < 0 || array >= static_cast<int>(it.extents.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(it.spec.name, " has no array ", array));
  }
  const int64_t align = store_->device()->alignment();
  if (reinterpret_cast<uintptr_t>(buffer) % align != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("reading ", it.spec.name, ".", it.spec.arrays[array],
                     ": buffer not aligned to ", align, " bytes"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (!write_error_.ok()) return write_error_;
    const int s = SlotOfLocked(item);
    if (s >= 0) {
      const Slot& slot = slots_[s];
      if (slot.state == SlotState::kHeld) {
        return absl::FailedPreconditionError(
            absl::StrCat(it.spec.name, " is acquired"));
      }
      // Written back (or being written) from the slot: every array there
      // is the newest. Staged by a read: only the staged arrays are there.
      const bool staged =
          it.spec.staged_arrays < 0 || array < it.spec.staged_arrays;
      if (slot.state == SlotState::kWriting ||
          slot.state == SlotState::kCached ||
          (slot.state == SlotState::kReady && slot.status.ok() && staged)) {
        std::memcpy(buffer, slot.data + it.offsets[array],
                    it.spec.array_bytes[array]);
        traffic_.reused += it.spec.array_bytes[array];
        return uint64_t{0};
      }
      // kReading: the device holds the same data; read it alongside.
    }
  }
  const ExtentIo io{IoOp::kRead, it.extents[array], buffer};
  absl::StatusOr<IoTicket> ticket = store_->Submit({&io, 1});
  if (!ticket.ok()) return ticket.status();
  absl::MutexLock lock(&mu_);
  traffic_.read += it.spec.array_bytes[array];
  const uint64_t id = next_array_read_++;
  array_reads_[id].ticket = *ticket;
  in_flight_.push_back({-1, id});
  return id;
}

absl::Status SpillStreamer::FinishArrayRead(uint64_t read) {
  if (read == 0) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (!array_reads_.contains(read)) {
    return absl::InvalidArgumentError(absl::StrCat("no array read ", read));
  }
  // Looked up each time: other reads' insertions may move the entry.
  const auto done = [this, read]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return array_reads_.find(read)->second.done;
  };
  mu_.Await(absl::Condition(&done));
  absl::Status status = std::move(array_reads_.find(read)->second.status);
  array_reads_.erase(read);
  return status;
}

}  // namespace stronghold::storage
