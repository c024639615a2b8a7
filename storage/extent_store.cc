#include "storage/extent_store.h"

#include <glog/logging.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/crc32c.h"

namespace stronghold::storage {
namespace {

constexpr uint32_t kTrailerMagic = 0x54584853;  // "SHXT" little-endian
constexpr uint32_t kTrailerVersion = 1;

// The trailer's fixed part; followed by uint32_t crc[blocks] and the CRC32C
// of everything before it. Host byte order: the files are scratch space of
// one process, never moved between machines.
struct TrailerHeader {
  uint32_t magic;
  uint32_t version;
  uint64_t extent;
  uint64_t generation;
  uint64_t payload_bytes;
  uint64_t block_bytes;
  uint64_t blocks;
};
static_assert(sizeof(TrailerHeader) == 48);

int64_t RoundUp(int64_t x, int64_t unit) {
  return (x + unit - 1) / unit * unit;
}

// The device's error, same code, with what the store was doing in front.
absl::Status Annotate(absl::string_view what, const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(what, ": ", status.message()));
}

int64_t Blocks(int64_t bytes, int64_t block_bytes) {
  return (bytes + block_bytes - 1) / block_bytes;
}

int64_t TrailerBytes(int64_t blocks, int64_t alignment) {
  return RoundUp(sizeof(TrailerHeader) + 4 * blocks + 4, alignment);
}

}  // namespace

ExtentStore::ExtentStore(BlockDevice* device, const ExtentStoreOptions& options)
    : device_(device),
      block_bytes_(RoundUp(options.block_bytes, device->alignment())) {}

ExtentStore::~ExtentStore() {
  absl::MutexLock lock(&mu_);
  for (auto& [ticket, batch] : batches_) {
    device_->Wait(batch.device_ticket).IgnoreError();
  }
}

int64_t ExtentStore::StoredBytes(int64_t bytes, int64_t alignment,
                                 int64_t block_bytes) {
  block_bytes = RoundUp(block_bytes, alignment);
  return RoundUp(RoundUp(bytes, alignment) +
                     TrailerBytes(Blocks(bytes, block_bytes), alignment),
                 block_bytes);
}

absl::StatusOr<ExtentId> ExtentStore::Allocate(int64_t bytes,
                                               absl::string_view name) {
  if (bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("extent ", name, ": size ", bytes, " is not positive"));
  }
  const int64_t align = device_->alignment();
  Extent e;
  e.info.name = std::string(name);
  e.info.bytes = bytes;
  e.info.buffer_bytes = RoundUp(bytes, align);
  e.info.stored_bytes = StoredBytes(bytes, align, block_bytes_);
  e.blocks = Blocks(bytes, block_bytes_);
  e.trailer_bytes = TrailerBytes(e.blocks, align);
  absl::MutexLock lock(&mu_);
  if (next_offset_ + e.info.stored_bytes > device_->capacity()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "extent ", name, " needs ", e.info.stored_bytes,
        " bytes of the block device, which has ",
        device_->capacity() - next_offset_, " of its ", device_->capacity(),
        " bytes left (", next_offset_ + e.info.stored_bytes,
        " bytes needed in all so far)"));
  }
  // Every extent starts on a block boundary, so its blocks are the device's
  // stripes and no I/O is split in two.
  e.info.offset = next_offset_;
  e.trailer_offset = e.info.offset + e.info.buffer_bytes;
  next_offset_ += e.info.stored_bytes;
  extents_.push_back(std::move(e));
  return static_cast<ExtentId>(extents_.size() - 1);
}

ExtentInfo ExtentStore::info(ExtentId extent) const {
  absl::MutexLock lock(&mu_);
  return extents_.at(extent).info;
}

int64_t ExtentStore::allocated_bytes() const {
  absl::MutexLock lock(&mu_);
  return next_offset_;
}

void ExtentStore::BuildTrailer(const Extent& e, ExtentId id,
                               uint64_t generation, const char* data,
                               char* trailer) const {
  const TrailerHeader header{kTrailerMagic,
                             kTrailerVersion,
                             static_cast<uint64_t>(id),
                             generation,
                             static_cast<uint64_t>(e.info.bytes),
                             static_cast<uint64_t>(block_bytes_),
                             static_cast<uint64_t>(e.blocks)};
  std::memcpy(trailer, &header, sizeof(header));
  char* crcs = trailer + sizeof(header);
  for (int64_t b = 0; b < e.blocks; ++b) {
    const int64_t begin = b * block_bytes_;
    const int64_t len = std::min(block_bytes_, e.info.bytes - begin);
    const uint32_t crc = crc32c::Value(data + begin, len);
    std::memcpy(crcs + 4 * b, &crc, 4);
  }
  const int64_t covered = sizeof(header) + 4 * e.blocks;
  const uint32_t crc = crc32c::Value(trailer, covered);
  std::memcpy(trailer + covered, &crc, 4);
}

std::string ExtentStore::Where(int64_t device_offset) const {
  const IoLocation where = device_->Locate(device_offset);
  return absl::StrCat("device offset ", device_offset, " = offset ",
                      where.offset, " of ", where.file);
}

absl::Status ExtentStore::Verify(const Extent& e,
                                 const PendingRead& read) const {
  const char* trailer = read.trailer.data();
  const auto corrupt = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat(
        "extent ", e.info.name, " (", e.info.bytes, " bytes at device offset ",
        e.info.offset, " of the ", device_->backend(), " device): ", what));
  };
  const int64_t covered = sizeof(TrailerHeader) + 4 * e.blocks;
  uint32_t stored_crc;
  std::memcpy(&stored_crc, trailer + covered, 4);
  if (crc32c::Value(trailer, covered) != stored_crc) {
    return corrupt(absl::StrCat("its checksum trailer at ",
                                Where(e.trailer_offset), " is corrupt"));
  }
  TrailerHeader header;
  std::memcpy(&header, trailer, sizeof(header));
  if (header.magic != kTrailerMagic || header.version != kTrailerVersion ||
      header.extent != static_cast<uint64_t>(read.extent) ||
      header.payload_bytes != static_cast<uint64_t>(e.info.bytes) ||
      header.block_bytes != static_cast<uint64_t>(block_bytes_) ||
      header.blocks != static_cast<uint64_t>(e.blocks)) {
    return corrupt(
        absl::StrCat("the checksum trailer at ", Where(e.trailer_offset),
                     " belongs to another extent (", header.extent, ", ",
                     header.payload_bytes, " bytes): a misdirected write"));
  }
  if (header.generation != read.generation) {
    return corrupt(absl::StrCat("the data on the device is from write ",
                                header.generation, ", not from the last write ",
                                read.generation, ": a write was lost"));
  }
  for (int64_t b = 0; b < e.blocks; ++b) {
    const int64_t begin = b * block_bytes_;
    const int64_t len = std::min(block_bytes_, e.info.bytes - begin);
    uint32_t expected;
    std::memcpy(&expected, trailer + sizeof(header) + 4 * b, 4);
    const uint32_t actual = crc32c::Value(read.data + begin, len);
    if (actual != expected) {
      return corrupt(absl::StrFormat(
          "CRC32C mismatch in block %d (bytes [%d, %d), %s): stored %08x, read "
          "data has %08x (a torn or corrupted write)",
          b, begin, begin + len, Where(e.info.offset + begin), expected,
          actual));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<IoTicket> ExtentStore::Submit(absl::Span<const ExtentIo> ios) {
  struct WriteToCheck {
    Extent extent;  // a copy: extents_ may grow meanwhile
    ExtentId id;
    uint64_t generation;
    const char* data;
  };
  Batch batch;
  std::vector<IoRequest> requests;
  std::vector<WriteToCheck> writes;
  {
    absl::MutexLock lock(&mu_);
    for (const ExtentIo& io : ios) {
      if (io.extent < 0 || io.extent >= static_cast<int>(extents_.size())) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown extent ", io.extent));
      }
      Extent& e = extents_[io.extent];
      absl::StrAppend(&batch.what, batch.what.empty() ? "" : ", ", e.info.name);
      requests.push_back(
          {io.op, e.info.offset, e.info.buffer_bytes, io.buffer});
      AlignedBuffer trailer(e.trailer_bytes, device_->alignment());
      if (io.op == IoOp::kRead) {
        if (e.generation == 0) {
          return absl::FailedPreconditionError(absl::StrCat(
              "extent ", e.info.name, " is read before it was written"));
        }
        requests.push_back(
            {io.op, e.trailer_offset, e.trailer_bytes, trailer.data()});
        batch.reads.push_back({io.extent, e.generation,
                               static_cast<const char*>(io.buffer),
                               std::move(trailer)});
      } else {
        ++e.generation;
        writes.push_back(
            {e, io.extent, e.generation, static_cast<const char*>(io.buffer)});
        requests.push_back(
            {io.op, e.trailer_offset, e.trailer_bytes, trailer.data()});
        batch.trailers.push_back(std::move(trailer));
      }
    }
  }
  // CRC32C over the data, outside the lock: it is the expensive part.
  for (size_t i = 0; i < writes.size(); ++i) {
    const WriteToCheck& w = writes[i];
    BuildTrailer(w.extent, w.id, w.generation, w.data,
                 batch.trailers[i].data());
  }
  bool any_write = false, any_read = false;
  for (const ExtentIo& io : ios)
    (io.op == IoOp::kWrite ? any_write : any_read) = true;
  batch.what = absl::StrCat(any_write && any_read ? "transferring"
                            : any_write           ? "writing"
                                                  : "reading",
                            " extent", ios.size() > 1 ? "s " : " ", batch.what);
  absl::StatusOr<IoTicket> device_ticket = device_->Submit(requests);
  if (!device_ticket.ok()) return Annotate(batch.what, device_ticket.status());
  batch.device_ticket = *device_ticket;
  absl::MutexLock lock(&mu_);
  const IoTicket ticket = next_ticket_++;
  batches_.emplace(ticket, std::move(batch));
  return ticket;
}

absl::Status ExtentStore::Wait(IoTicket ticket) {
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
  if (absl::Status s = device_->Wait(batch.device_ticket); !s.ok()) {
    return Annotate(batch.what, s);
  }
  for (const PendingRead& read : batch.reads) {
    Extent e;
    {
      absl::MutexLock lock(&mu_);
      e = extents_[read.extent];
    }
    if (absl::Status s = Verify(e, read); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ExtentStore::Write(ExtentId extent, const void* buffer) {
  const ExtentIo io{IoOp::kWrite, extent, const_cast<void*>(buffer)};
  absl::StatusOr<IoTicket> ticket = Submit({&io, 1});
  if (!ticket.ok()) return ticket.status();
  return Wait(*ticket);
}

absl::Status ExtentStore::Read(ExtentId extent, void* buffer) {
  const ExtentIo io{IoOp::kRead, extent, buffer};
  absl::StatusOr<IoTicket> ticket = Submit({&io, 1});
  if (!ticket.ok()) return ticket.status();
  return Wait(*ticket);
}

}  // namespace stronghold::storage
