#include "core/engine/tier_reader.h"

#include <algorithm>
#include <utility>

#include "core/device/timeline.h"
#include "glog/logging.h"
#include "storage/spill_streamer.h"

namespace stronghold::core {
namespace {

constexpr int64_t kAlignment =
    4096;  // O_DIRECT; Device::AllocateHost aligns to it

int64_t RoundUp(int64_t x, int64_t unit) {
  return (x + unit - 1) / unit * unit;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TierReader>> TierReader::Create(
    Device* device, storage::SpillStreamer* spill, std::vector<Source> sources,
    int ring) {
  if (ring < 1)
    return absl::InvalidArgumentError("tier reader: needs a ring buffer");
  int64_t largest = 0;
  for (const Source& s : sources) {
    if (s.item >= 0) largest = std::max(largest, s.bytes);
  }
  std::unique_ptr<TierReader> reader(
      new TierReader(device, spill, std::move(sources)));
  if (largest == 0) return reader;  // nothing on the tier: no ring
  if (spill == nullptr)
    return absl::InvalidArgumentError("tier reader: sources but no streamer");
  for (int i = 0; i < ring; ++i) {
    absl::StatusOr<void*> data = device->AllocateHost(RingEntryBytes(largest));
    if (!data.ok()) return data.status();  // the destructor frees the others
    CHECK_EQ(reinterpret_cast<uintptr_t>(*data) % kAlignment, 0u);
    reader->ring_.push_back(Entry{*data});
  }
  return reader;
}

int64_t TierReader::RingEntryBytes(int64_t largest_source_bytes) {
  return RoundUp(largest_source_bytes, kAlignment);
}

TierReader::~TierReader() {
  Drop();
  for (Entry& e : ring_) {
    device_->HostWait(e.last_h2d);
    device_->FreeHost(e.data);
  }
}

void TierReader::Drop() {
  for (Entry& e : ring_) {
    if (e.reading) spill_->FinishArrayRead(e.ticket).IgnoreError();
    e.reading = false;
    e.error = absl::OkStatus();
  }
  started_ = taken_;
}

void TierReader::Plan(std::vector<int> order,
                      const std::function<bool(int)>& ready) {
  Drop();
  order.erase(std::remove_if(order.begin(), order.end(),
                             [this](int b) { return !on_tier(b); }),
              order.end());
  order_ = std::move(order);
  started_ = taken_ = sent_ = 0;
  Pump(ready);
}

void TierReader::Start(int64_t k) {
  Entry& e = ring_[k % ring_.size()];
  const Source& s = sources_[order_[k]];
  absl::StatusOr<uint64_t> ticket =
      spill_->StartArrayRead(s.item, s.array, e.data);
  e.reading = ticket.ok();
  e.ticket = ticket.ok() ? *ticket : 0;
  e.error = ticket.status();
  stats_.read_bytes += s.bytes;
  started_ = k + 1;
}

void TierReader::Pump(const std::function<bool(int)>& ready) {
  const int64_t ring = static_cast<int64_t>(ring_.size());
  // Position k reuses the entry of position k - ring, whose H2D must be
  // queued (k - ring < sent_) and done.
  while (started_ < static_cast<int64_t>(order_.size()) &&
         started_ < sent_ + ring) {
    if (!device_->Done(ring_[started_ % ring].last_h2d) ||
        !ready(order_[started_]))
      return;
    Start(started_);
  }
}

const void* TierReader::Take(int b, absl::Status* error) {
  CHECK(on_tier(b)) << "buffer " << b << " is not on the tier";
  CHECK_EQ(sent_, taken_) << "Take before the last Take's Sent";
  const int64_t start = Timeline::NowNs();
  if (taken_ >= static_cast<int64_t>(order_.size()) || order_[taken_] != b) {
    // Off the plan: finish the reads in flight, forget the plan, read b alone.
    ++stats_.unplanned;
    Drop();
    order_.assign(1, b);
    started_ = taken_ = sent_ = 0;
  }
  const int64_t k = taken_;
  Entry& e = ring_[k % ring_.size()];
  if (k == started_) {  // Pump has not started it: now
    device_->HostWait(e.last_h2d);
    Start(k);
  }
  absl::Status status = std::move(e.error);
  e.error = absl::OkStatus();
  if (e.reading) {
    status.Update(spill_->FinishArrayRead(e.ticket));
    e.reading = false;
  }
  if (error->ok()) *error = std::move(status);
  ++taken_;
  stats_.wait_s += (Timeline::NowNs() - start) / 1e9;
  return e.data;
}

void TierReader::Sent(Event h2d) {
  CHECK_EQ(sent_ + 1, taken_) << "Sent without a Take";
  ring_[sent_ % ring_.size()].last_h2d = h2d;
  ++sent_;
}

}  // namespace stronghold::core
