// SpillStreamer's staging pipeline (storage/spill_streamer.h): creation,
// the slots, Prefetch, Acquire, Release, Flush and the reaper thread. The
// transfers beside it are spill_streamer_direct.cc.
#include "storage/spill_streamer.h"

#include <glog/logging.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace stronghold::storage {
namespace {

int64_t RoundUp(int64_t x, int64_t unit) {
  return (x + unit - 1) / unit * unit;
}

// Bytes of one slot: every item's arrays back to back, each aligned.
int64_t SlotBytes(const std::vector<SpillItem>& items, int64_t alignment) {
  int64_t slot = 0;
  for (const SpillItem& item : items) {
    int64_t bytes = 0;
    for (int64_t b : item.array_bytes) bytes += RoundUp(b, alignment);
    slot = std::max(slot, bytes);
  }
  return slot;
}

}  // namespace

int64_t SpillStreamer::StagingBytes(const std::vector<SpillItem>& items,
                                    int slots, int64_t alignment) {
  return slots * SlotBytes(items, alignment);
}

int64_t SpillStreamer::DeviceBytes(const std::vector<SpillItem>& items,
                                   int64_t alignment, int64_t block_bytes) {
  int64_t bytes = 0;
  for (const SpillItem& item : items) {
    for (int64_t b : item.array_bytes) {
      bytes += ExtentStore::StoredBytes(b, alignment, block_bytes);
    }
  }
  return bytes;
}

absl::StatusOr<std::unique_ptr<SpillStreamer>> SpillStreamer::Create(
    ExtentStore* store, std::vector<SpillItem> items,
    const SpillStreamerOptions& options) {
  if (options.staging_slots < 1) {
    return absl::InvalidArgumentError("spill streamer: needs a staging slot");
  }
  const int64_t align = store->device()->alignment();
  std::vector<Item> prepared;
  for (SpillItem& spec : items) {
    if (spec.arrays.size() != spec.array_bytes.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("spill item ", spec.name, ": names and sizes differ"));
    }
    Item item;
    int64_t offset = 0;
    for (size_t k = 0; k < spec.arrays.size(); ++k) {
      absl::StatusOr<ExtentId> id = store->Allocate(
          spec.array_bytes[k], absl::StrCat(spec.name, ".", spec.arrays[k]));
      if (!id.ok()) return id.status();
      item.extents.push_back(*id);
      item.offsets.push_back(offset);
      offset += RoundUp(spec.array_bytes[k], align);
    }
    item.spec = std::move(spec);
    prepared.push_back(std::move(item));
  }
  std::vector<SpillItem> specs;
  for (const Item& item : prepared) specs.push_back(item.spec);
  const int64_t slot_bytes = SlotBytes(specs, align);
  std::unique_ptr<SpillStreamer> streamer(new SpillStreamer(
      store, std::move(prepared), slot_bytes, options.staging_slots));
  if (streamer->staging_.data() == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("spill streamer: cannot allocate ",
                     streamer->staging_.size(), " bytes of staging"));
  }
  // Not fatal: without registration the I/O still works (the device warns).
  store->device()
      ->RegisterBuffers(
          {{streamer->staging_.data(), streamer->staging_.size()}})
      .IgnoreError();
  return streamer;
}

SpillStreamer::SpillStreamer(ExtentStore* store, std::vector<Item> items,
                             int64_t slot_bytes, int slots)
    : store_(store),
      items_(std::move(items)),
      slot_bytes_(slot_bytes),
      staging_(slot_bytes * slots, store->device()->alignment()) {
  absl::MutexLock lock(&mu_);
  slots_.resize(slots);
  for (int s = 0; s < slots; ++s) {
    slots_[s].data = staging_.data() + s * slot_bytes_;
  }
  reaper_ = std::thread([this] { Reap(); });
}

SpillStreamer::~SpillStreamer() {
  Flush().IgnoreError();
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  reaper_.join();
  store_->device()->RegisterBuffers({}).IgnoreError();
}

std::vector<ExtentIo> SpillStreamer::Ios(IoOp op, int item, char* data) const {
  std::vector<ExtentIo> ios;
  const Item& it = items_[item];
  const size_t staged = it.spec.staged_arrays < 0
                            ? it.extents.size()
                            : static_cast<size_t>(it.spec.staged_arrays);
  for (size_t k = 0; k < it.extents.size(); ++k) {
    if (op == IoOp::kRead && k >= staged) break;
    ios.push_back({op, it.extents[k], data + it.offsets[k]});
  }
  return ios;
}

int64_t SpillStreamer::ItemBytes(IoOp op, int item) const {
  const SpillItem& spec = items_[item].spec;
  const size_t n = op == IoOp::kRead && spec.staged_arrays >= 0
                       ? static_cast<size_t>(spec.staged_arrays)
                       : spec.array_bytes.size();
  int64_t bytes = 0;
  for (size_t k = 0; k < n; ++k) bytes += spec.array_bytes[k];
  return bytes;
}

SpillStreamer::Traffic SpillStreamer::traffic() const {
  absl::MutexLock lock(&mu_);
  return traffic_;
}

int SpillStreamer::SlotOfLocked(int item) const {
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].state != SlotState::kFree && slots_[s].item == item) {
      return static_cast<int>(s);
    }
  }
  return -1;
}

int SpillStreamer::FreeSlotLocked() {
  int cached = -1;
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].state == SlotState::kFree) return static_cast<int>(s);
    if (slots_[s].state == SlotState::kCached && cached < 0)
      cached = static_cast<int>(s);
  }
  if (cached >= 0) {  // its item is on the device too: give the copy up
    slots_[cached].state = SlotState::kFree;
    slots_[cached].item = -1;
  }
  return cached;
}

void SpillStreamer::StartReadsLocked() {
  while (!order_.empty()) {
    const int item = order_.front();
    const int staged = SlotOfLocked(item);
    if (staged >= 0) {
      // Already there or on its way; if it is being written back, the slot
      // still holds the newest data: keep it instead of reading it again.
      if (slots_[staged].state == SlotState::kWriting) {
        slots_[staged].wanted = true;
      }
      if (slots_[staged].state == SlotState::kCached) {
        slots_[staged].state = SlotState::kReady;  // kept for its Acquire
        traffic_.reused += ItemBytes(IoOp::kRead, item);
      }
      order_.pop_front();
      continue;
    }
    const int s = FreeSlotLocked();
    if (s < 0) return;
    order_.pop_front();
    Slot& slot = slots_[s];
    slot.item = item;
    slot.wanted = false;
    absl::StatusOr<IoTicket> ticket =
        store_->Submit(Ios(IoOp::kRead, item, slot.data));
    if (!ticket.ok()) {
      slot.state = SlotState::kReady;  // Acquire() reports the error
      slot.status = ticket.status();
      ++changes_;
      continue;
    }
    slot.state = SlotState::kReading;
    slot.ticket = *ticket;
    in_flight_.push_back({s, 0});
    traffic_.read += ItemBytes(IoOp::kRead, item);
  }
}

void SpillStreamer::Reap() {
  absl::MutexLock lock(&mu_);
  while (true) {
    const auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return stop_ || !in_flight_.empty();
    };
    mu_.Await(absl::Condition(&ready));
    if (in_flight_.empty()) return;  // stopping, nothing left
    // Completions are taken oldest first; the device finishes them in
    // roughly that order anyway.
    const InFlight next = in_flight_.front();
    const IoTicket ticket = next.slot >= 0
                                ? slots_[next.slot].ticket
                                : array_reads_[next.array_read].ticket;
    mu_.Unlock();
    absl::Status status = store_->Wait(ticket);
    mu_.Lock();
    in_flight_.pop_front();
    ++changes_;
    if (next.slot < 0) {
      ArrayRead& read = array_reads_[next.array_read];
      read.done = true;
      read.status = std::move(status);
      continue;
    }
    const int s = next.slot;
    Slot& slot = slots_[s];
    if (slot.state == SlotState::kReading) {
      slot.state = SlotState::kReady;
      slot.status = std::move(status);
    } else {
      CHECK(slot.state == SlotState::kWriting);
      if (!status.ok() && write_error_.ok()) write_error_ = status;
      slot.state = !status.ok()  ? SlotState::kFree
                   : slot.wanted ? SlotState::kReady
                                 : SlotState::kCached;
      if (slot.state == SlotState::kReady)
        traffic_.reused += ItemBytes(IoOp::kRead, slot.item);
      if (slot.state == SlotState::kFree) slot.item = -1;
      slot.status = absl::OkStatus();
      slot.wanted = false;
    }
    StartReadsLocked();
  }
}

void SpillStreamer::Prefetch(absl::Span<const int> order) {
  absl::MutexLock lock(&mu_);
  order_.assign(order.begin(), order.end());
  StartReadsLocked();
}

absl::StatusOr<std::vector<void*>> SpillStreamer::Acquire(int item) {
  if (item < 0 || item >= items()) {
    return absl::InvalidArgumentError(absl::StrCat("no spill item ", item));
  }
  absl::MutexLock lock(&mu_);
  while (true) {
    if (!write_error_.ok()) return write_error_;
    const int s = SlotOfLocked(item);
    if (s >= 0 && slots_[s].state == SlotState::kHeld) {
      return absl::FailedPreconditionError(
          absl::StrCat(items_[item].spec.name, " is already acquired"));
    }
    if (s >= 0 && slots_[s].state == SlotState::kCached) {
      traffic_.reused += ItemBytes(IoOp::kRead, item);
      break;
    }
    if (s >= 0 && slots_[s].state == SlotState::kReady) break;
    if (s >= 0 && slots_[s].state == SlotState::kWriting) {
      slots_[s].wanted = true;
    }
    if (s < 0 && std::all_of(slots_.begin(), slots_.end(), [](const Slot& x) {
          return x.state == SlotState::kHeld;
        })) {
      return absl::FailedPreconditionError(absl::StrCat(
          "all ", slots_.size(),
          " staging slots are acquired; release one before acquiring ",
          items_[item].spec.name));
    }
    if (s < 0) {
      // Not staged: it goes first. If every slot holds items staged for
      // later, give one of them up (its item is read again afterwards), so
      // an unexpected order cannot deadlock.
      order_.erase(std::remove(order_.begin(), order_.end(), item),
                   order_.end());
      order_.push_front(item);
      if (FreeSlotLocked() < 0) {
        for (Slot& victim : slots_) {
          if (victim.state == SlotState::kReady) {
            order_.insert(order_.begin() + 1, victim.item);
            victim.state = SlotState::kFree;
            victim.item = -1;
            break;
          }
        }
      }
      StartReadsLocked();
      // Started (or failed to start: then kReady with the error)? Look
      // again. Otherwise wait below for a slot to come free.
      if (SlotOfLocked(item) >= 0) continue;
    }
    const int64_t seen = changes_;
    const auto changed = [this, seen]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return changes_ != seen;
    };
    mu_.Await(absl::Condition(&changed));
  }
  Slot& slot = slots_[SlotOfLocked(item)];
  if (!slot.status.ok()) {
    absl::Status status = std::move(slot.status);
    slot.state = SlotState::kFree;
    slot.item = -1;
    slot.status = absl::OkStatus();
    StartReadsLocked();
    return status;
  }
  slot.state = SlotState::kHeld;
  std::vector<void*> arrays;
  for (int64_t offset : items_[item].offsets) {
    arrays.push_back(slot.data + offset);
  }
  return arrays;
}

absl::Status SpillStreamer::Release(int item) {
  char* data;
  {
    absl::MutexLock lock(&mu_);
    const int s = SlotOfLocked(item);
    if (s < 0 || slots_[s].state != SlotState::kHeld) {
      return absl::FailedPreconditionError(absl::StrCat(
          "spill item ", item, " is released without being acquired"));
    }
    if (!write_error_.ok()) {
      slots_[s].state = SlotState::kFree;
      slots_[s].item = -1;
      return write_error_;
    }
    slots_[s].state = SlotState::kWriting;
    slots_[s].ticket = 0;
    slots_[s].wanted = false;
    data = slots_[s].data;
    ++writes_starting_;
  }
  // Outside the lock: the store computes the CRC32C of the data here.
  absl::StatusOr<IoTicket> ticket =
      store_->Submit(Ios(IoOp::kWrite, item, data));
  absl::MutexLock lock(&mu_);
  --writes_starting_;
  const int s = SlotOfLocked(item);
  if (!ticket.ok()) {
    if (write_error_.ok()) write_error_ = ticket.status();
    slots_[s].state = SlotState::kFree;
    slots_[s].item = -1;
    ++changes_;
    return ticket.status();
  }
  slots_[s].ticket = *ticket;
  in_flight_.push_back({s, 0});
  traffic_.written += ItemBytes(IoOp::kWrite, item);
  return absl::OkStatus();
}

absl::Status SpillStreamer::Flush() {
  absl::MutexLock lock(&mu_);
  const auto idle = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return in_flight_.empty() && writes_starting_ == 0;
  };
  mu_.Await(absl::Condition(&idle));
  return write_error_;
}

}  // namespace stronghold::storage
