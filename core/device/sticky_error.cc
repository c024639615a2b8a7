#include "core/device/sticky_error.h"

#include <utility>

namespace stronghold::core {

bool StickyError::Record(absl::Status error, bool lost) {
  if (error.ok()) return false;
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return false;
  error_ = std::move(error);
  lost_ = lost;
  failed_.store(true, std::memory_order_release);
  return true;
}

bool StickyError::lost() const {
  absl::MutexLock lock(&mu_);
  return lost_;
}

absl::Status StickyError::status() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

void StickyError::ClearRecoverable() {
  absl::MutexLock lock(&mu_);
  if (lost_) return;
  error_ = absl::OkStatus();
  failed_.store(false, std::memory_order_release);
}

}  // namespace stronghold::core
