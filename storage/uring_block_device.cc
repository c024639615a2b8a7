#include "storage/uring_block_device.h"

#include <glog/logging.h>
#include <liburing.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/batch_tracker.h"

namespace stronghold::storage {
namespace {

// user_data of the nop that tells the reaper to exit.
constexpr uint64_t kStopReaper = ~uint64_t{0};
// The kernel refuses fixed buffers larger than 1 GiB.
constexpr int64_t kMaxFixedBufferBytes = int64_t{1} << 30;

absl::Status UringError(absl::string_view what, int err) {
  return absl::UnavailableError(absl::StrCat(
      "io_uring: ", what, ": ", strerror(err), " (errno ", err, ")"));
}

absl::Status DoProbe() {
  io_uring ring;
  int ret = io_uring_queue_init(4, &ring, 0);
  if (ret < 0) return UringError("cannot set up a ring", -ret);
  absl::Status status;
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  if (probe == nullptr) {
    status = absl::UnavailableError("io_uring: the kernel cannot be probed");
  } else {
    for (int op : {IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READ_FIXED,
                   IORING_OP_WRITE_FIXED, IORING_OP_NOP}) {
      if (!io_uring_opcode_supported(probe, op)) {
        status = absl::UnavailableError(
            absl::StrCat("io_uring: the kernel lacks operation ", op));
      }
    }
    io_uring_free_probe(probe);
  }
  if (status.ok()) {
    // A ring that sets up but cannot run anything (some sandboxes) fails here.
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    ret = io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe* cqe = nullptr;
    if (ret < 0) {
      status = UringError("cannot submit", -ret);
    } else if ((ret = io_uring_wait_cqe(&ring, &cqe)) < 0) {
      status = UringError("cannot complete", -ret);
    } else {
      if (cqe->res < 0) status = UringError("nop failed", -cqe->res);
      io_uring_cqe_seen(&ring, cqe);
    }
  }
  io_uring_queue_exit(&ring);
  return status;
}

class UringBlockDevice final : public BlockDevice {
 public:
  UringBlockDevice(std::unique_ptr<StripedFiles> files, int queue_depth)
      : files_(std::move(files)), queue_depth_(queue_depth) {}

  // Sets up the ring and registers the files (optional: falls back to plain
  // descriptors with a warning).
  absl::Status Init() {
    const int ret = io_uring_queue_init(queue_depth_, &ring_, 0);
    if (ret < 0) return UringError("cannot set up a ring", -ret);
    ring_ready_ = true;
    std::vector<int> fds;
    for (int i = 0; i < files_->count(); ++i) fds.push_back(files_->fd(i));
    const int reg = io_uring_register_files(&ring_, fds.data(), fds.size());
    if (reg < 0) {
      LOG(WARNING) << "io_uring: cannot register files (" << strerror(-reg)
                   << "); using plain descriptors";
    }
    fixed_files_ = reg >= 0;
    {
      absl::MutexLock lock(&mu_);
      for (int i = queue_depth_ - 1; i >= 0; --i) free_slots_.push_back(i);
      slots_.resize(queue_depth_);
    }
    reaper_ = std::thread([this] { Reap(); });
    return absl::OkStatus();
  }

  ~UringBlockDevice() override {
    if (!ring_ready_) return;
    tracker_.WaitIdle();
    StopReaper();
    io_uring_queue_exit(&ring_);
  }

  absl::string_view backend() const override { return "io_uring"; }
  std::string Describe() const override {
    absl::MutexLock lock(&mu_);
    return absl::StrCat("io_uring block device: ", files_->count(),
                        " file(s) (", files_->path(0), "...), ", capacity(),
                        " bytes, ", files_->block_bytes(),
                        "-byte blocks, queue depth ", queue_depth_,
                        files_->direct_io() ? ", O_DIRECT" : ", buffered",
                        fixed_files_ ? ", registered files" : "", ", ",
                        fixed_.size(), " registered buffer(s)");
  }
  int64_t alignment() const override { return 4096; }
  int64_t capacity() const override { return files_->capacity(); }
  IoLocation Locate(int64_t offset) const override {
    return files_->Locate(offset);
  }

  absl::Status RegisterBuffers(absl::Span<const IoBuffer> buffers) override {
    std::vector<FixedBuffer> fixed;
    std::vector<iovec> iovecs;
    for (const IoBuffer& b : buffers) {
      for (int64_t at = 0; at < b.bytes; at += kMaxFixedBufferBytes) {
        char* base = static_cast<char*>(b.data) + at;
        const int64_t len = std::min(kMaxFixedBufferBytes, b.bytes - at);
        fixed.push_back({base, base + len, static_cast<int>(iovecs.size())});
        iovecs.push_back({base, static_cast<size_t>(len)});
      }
    }
    std::sort(fixed.begin(), fixed.end(),
              [](const FixedBuffer& a, const FixedBuffer& b) {
                return a.begin < b.begin;
              });
    // Old kernels quiesce the ring to change its buffers, which would wait
    // forever for the reaper blocked in io_uring_enter: stop it meanwhile.
    {
      absl::MutexLock lock(&mu_);
      if (in_flight_ > 0 || !queue_.empty()) {
        return absl::FailedPreconditionError(
            "io_uring: RegisterBuffers with I/O in flight");
      }
    }
    StopReaper();
    absl::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (!fixed_.empty()) io_uring_unregister_buffers(&ring_);
      fixed_.clear();
      if (!iovecs.empty()) {
        const int ret =
            io_uring_register_buffers(&ring_, iovecs.data(), iovecs.size());
        if (ret < 0) {
          status = UringError(
              absl::StrCat("cannot register ", iovecs.size(),
                           " buffer(s) (raise RLIMIT_MEMLOCK, e.g. "
                           "LimitMEMLOCK=infinity); using unregistered I/O"),
              -ret);
          LOG(WARNING) << status.message();
        } else {
          fixed_ = std::move(fixed);
        }
      }
    }
    reaper_ = std::thread([this] { Reap(); });
    return status;
  }

 protected:
  absl::StatusOr<IoTicket> DoSubmit(
      absl::Span<const IoRequest> requests) override {
    std::vector<Piece> work = files_->SplitRequests(requests);
    const IoTicket ticket = tracker_.Begin(work.size());
    absl::MutexLock lock(&mu_);
    for (Piece& p : work) {
      p.ticket = ticket;
      queue_.push_back(p);
    }
    FillRingLocked();
    return ticket;
  }
  absl::Status DoWait(IoTicket ticket) override {
    return tracker_.Wait(ticket);
  }
  absl::Status DoSync() override { return files_->SyncAll(); }

 private:
  using Piece = StripedFiles::FileIo;
  struct FixedBuffer {
    char* begin;
    char* end;
    int index;  // in the ring's buffer table
  };

  // Moves queued pieces onto the ring while fewer than queue_depth_ are in
  // flight, and submits them.
  void FillRingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    int added = 0;
    while (in_flight_ < queue_depth_ && !queue_.empty()) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) break;  // not expected: the ring has queue_depth_
      const int slot = free_slots_.back();
      free_slots_.pop_back();
      slots_[slot] = queue_.front();
      queue_.pop_front();
      Prepare(sqe, slots_[slot]);
      io_uring_sqe_set_data64(sqe, slot);
      ++in_flight_;
      ++added;
    }
    if (added == 0) return;
    while (true) {
      const int ret = io_uring_submit(&ring_);
      if (ret >= 0) break;
      // Transient: interrupted, or the kernel is short of memory or has a
      // full completion queue that the reaper is draining.
      if (ret == -EINTR || ret == -EAGAIN || ret == -EBUSY) {
        std::this_thread::yield();
        continue;
      }
      // The entries stay on the ring, so no piece could ever complete.
      LOG(FATAL) << "io_uring_submit: " << strerror(-ret);
    }
  }

  void Prepare(io_uring_sqe* sqe, const Piece& p)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int fd = fixed_files_ ? p.file : files_->fd(p.file);
    const int fixed = FixedIndexLocked(p.buffer, p.bytes);
    if (p.op == IoOp::kRead) {
      if (fixed >= 0) {
        io_uring_prep_read_fixed(sqe, fd, p.buffer, p.bytes, p.file_offset,
                                 fixed);
      } else {
        io_uring_prep_read(sqe, fd, p.buffer, p.bytes, p.file_offset);
      }
    } else {
      if (fixed >= 0) {
        io_uring_prep_write_fixed(sqe, fd, p.buffer, p.bytes, p.file_offset,
                                  fixed);
      } else {
        io_uring_prep_write(sqe, fd, p.buffer, p.bytes, p.file_offset);
      }
    }
    if (fixed_files_) sqe->flags |= IOSQE_FIXED_FILE;
  }

  // The registered buffer holding [p, p + bytes), or -1.
  int FixedIndexLocked(const char* p, int64_t bytes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = std::upper_bound(
        fixed_.begin(), fixed_.end(), p,
        [](const char* q, const FixedBuffer& b) { return q < b.begin; });
    if (it == fixed_.begin()) return -1;
    --it;
    return p + bytes <= it->end ? it->index : -1;
  }

  void Reap() {
    std::vector<std::pair<IoTicket, absl::Status>> done;
    while (true) {
      io_uring_cqe* cqe = nullptr;
      const int ret = io_uring_wait_cqe(&ring_, &cqe);
      if (ret == -EINTR || ret == -EAGAIN) continue;
      CHECK_GE(ret, 0) << "io_uring_wait_cqe: " << strerror(-ret);
      bool stop = false;
      done.clear();
      {
        absl::MutexLock lock(&mu_);
        unsigned head;
        unsigned seen = 0;
        io_uring_for_each_cqe(&ring_, head, cqe) {
          ++seen;
          const uint64_t slot = io_uring_cqe_get_data64(cqe);
          if (slot == kStopReaper) {
            stop = true;
            continue;
          }
          const Piece& p = slots_[slot];
          done.emplace_back(p.ticket,
                            CheckTransfer(p.op, files_->target(p.file),
                                          p.file_offset, p.bytes, cqe->res));
          free_slots_.push_back(static_cast<int>(slot));
          --in_flight_;
        }
        io_uring_cq_advance(&ring_, seen);
        FillRingLocked();
      }
      // Outside mu_: waking waiters need not contend with submitters.
      for (const auto& [ticket, status] : done) tracker_.Done(ticket, status);
      if (stop) return;
    }
  }

  void StopReaper() {
    {
      absl::MutexLock lock(&mu_);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      CHECK(sqe != nullptr);  // nothing is in flight
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kStopReaper);
      int ret;
      do {
        ret = io_uring_submit(&ring_);
      } while (ret == -EINTR || ret == -EAGAIN);
      CHECK_GE(ret, 0) << "io_uring_submit: " << strerror(-ret);
    }
    reaper_.join();
  }

  // Constant after Init().
  const std::unique_ptr<StripedFiles> files_;
  const int queue_depth_;
  bool ring_ready_ = false;
  bool fixed_files_ = false;
  std::thread reaper_;
  io_uring ring_;  // submission side guarded by mu_; the reaper owns the CQ

  BatchTracker tracker_;
  mutable absl::Mutex mu_;
  std::deque<Piece> queue_ ABSL_GUARDED_BY(mu_);   // not yet on the ring
  std::vector<Piece> slots_ ABSL_GUARDED_BY(mu_);  // on the ring, by slot
  std::vector<int> free_slots_ ABSL_GUARDED_BY(mu_);
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<FixedBuffer> fixed_ ABSL_GUARDED_BY(mu_);  // sorted by begin
};

}  // namespace

absl::Status ProbeIoUring() {
  static const absl::Status* const status = new absl::Status(DoProbe());
  return *status;
}

absl::StatusOr<std::unique_ptr<BlockDevice>> OpenUringBlockDevice(
    std::unique_ptr<StripedFiles> files, int queue_depth) {
  if (queue_depth < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("io_uring: queue depth ", queue_depth, " < 1"));
  }
  auto device =
      std::make_unique<UringBlockDevice>(std::move(files), queue_depth);
  if (absl::Status s = device->Init(); !s.ok()) return s;
  return std::unique_ptr<BlockDevice>(std::move(device));
}

}  // namespace stronghold::storage
