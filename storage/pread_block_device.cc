#include "storage/pread_block_device.h"

#include <unistd.h>

#include <cerrno>
#include <deque>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "storage/batch_tracker.h"

namespace stronghold::storage {
namespace {

class PreadBlockDevice final : public BlockDevice {
 public:
  PreadBlockDevice(std::unique_ptr<StripedFiles> files, int threads)
      : files_(std::move(files)) {
    for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Run(); });
  }

  ~PreadBlockDevice() override {
    tracker_.WaitIdle();
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : workers_) t.join();
  }

  absl::string_view backend() const override { return "pread"; }
  std::string Describe() const override {
    return absl::StrCat("pread block device: ", files_->count(), " file(s) (",
                        files_->path(0), "...), ", capacity(), " bytes, ",
                        files_->block_bytes(), "-byte blocks, ",
                        workers_.size(), " threads",
                        files_->direct_io() ? ", O_DIRECT" : ", buffered");
  }
  int64_t alignment() const override { return 4096; }
  int64_t capacity() const override { return files_->capacity(); }
  IoLocation Locate(int64_t offset) const override {
    return files_->Locate(offset);
  }

 protected:
  absl::StatusOr<IoTicket> DoSubmit(
      absl::Span<const IoRequest> requests) override {
    std::vector<Work> work = files_->SplitRequests(requests);
    const IoTicket ticket = tracker_.Begin(work.size());
    absl::MutexLock lock(&mu_);
    for (Work& w : work) {
      w.ticket = ticket;
      queue_.push_back(w);
    }
    return ticket;
  }
  absl::Status DoWait(IoTicket ticket) override {
    return tracker_.Wait(ticket);
  }
  absl::Status DoSync() override { return files_->SyncAll(); }

 private:
  using Work = StripedFiles::FileIo;

  void Run() {
    while (true) {
      Work w;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](PreadBlockDevice* d) ABSL_NO_THREAD_SAFETY_ANALYSIS {
              return d->stopping_ || !d->queue_.empty();
            },
            this));
        if (queue_.empty()) return;  // stopping
        w = queue_.front();
        queue_.pop_front();
      }
      tracker_.Done(w.ticket, Transfer(w));
    }
  }

  // One pread/pwrite; EINTR is retried, anything else is the result.
  absl::Status Transfer(const Work& w) const {
    const int fd = files_->fd(w.file);
    ssize_t n;
    do {
      n = w.op == IoOp::kRead ? pread(fd, w.buffer, w.bytes, w.file_offset)
                              : pwrite(fd, w.buffer, w.bytes, w.file_offset);
    } while (n < 0 && errno == EINTR);
    return CheckTransfer(w.op, files_->target(w.file), w.file_offset, w.bytes,
                         n < 0 ? -errno : n);
  }

  // Constant after construction.
  const std::unique_ptr<StripedFiles> files_;
  std::vector<std::thread> workers_;

  BatchTracker tracker_;
  absl::Mutex mu_;
  std::deque<Work> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<BlockDevice> NewPreadBlockDevice(
    std::unique_ptr<StripedFiles> files, int threads) {
  return std::make_unique<PreadBlockDevice>(std::move(files),
                                            threads < 1 ? 1 : threads);
}

}  // namespace stronghold::storage
