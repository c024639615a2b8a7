#include "storage/memory_block_device.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "storage/batch_tracker.h"

namespace stronghold::storage {
namespace {

class MemoryBlockDevice final : public BlockDevice {
 public:
  explicit MemoryBlockDevice(const MemoryBlockDeviceOptions& options)
      : alignment_(options.alignment_bytes),
        capacity_((options.capacity_bytes + alignment_ - 1) / alignment_ *
                  alignment_),
        // calloc: the kernel hands out zero pages lazily.
        data_(
            static_cast<char*>(std::calloc(capacity_ > 0 ? capacity_ : 1, 1))) {
  }
  ~MemoryBlockDevice() override { std::free(data_); }

  absl::string_view backend() const override { return "memory"; }
  std::string Describe() const override {
    return absl::StrCat("memory block device, ", capacity_, " bytes");
  }
  int64_t alignment() const override { return alignment_; }
  int64_t capacity() const override { return capacity_; }

 protected:
  absl::StatusOr<IoTicket> DoSubmit(
      absl::Span<const IoRequest> requests) override {
    if (data_ == nullptr) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "memory block device: cannot allocate ", capacity_, " bytes"));
    }
    const IoTicket ticket = tracker_.Begin(requests.size());
    // Distinct requests touch distinct bytes (the contract forbids overlaps
    // with writes), so concurrent batches need no lock here.
    for (const IoRequest& r : requests) {
      if (r.op == IoOp::kRead) {
        std::memcpy(r.buffer, data_ + r.offset, r.bytes);
      } else {
        std::memcpy(data_ + r.offset, r.buffer, r.bytes);
      }
      tracker_.Done(ticket, absl::OkStatus());
    }
    return ticket;
  }
  absl::Status DoWait(IoTicket ticket) override {
    return tracker_.Wait(ticket);
  }
  absl::Status DoSync() override { return absl::OkStatus(); }

 private:
  const int64_t alignment_;
  const int64_t capacity_;
  char* const data_;
  BatchTracker tracker_;
};

}  // namespace

std::unique_ptr<BlockDevice> NewMemoryBlockDevice(
    const MemoryBlockDeviceOptions& options) {
  return std::make_unique<MemoryBlockDevice>(options);
}

}  // namespace stronghold::storage
