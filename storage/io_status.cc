#include "storage/io_status.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace stronghold::storage {

namespace {

std::string Where(IoOp op, const IoTarget& target, int64_t offset,
                  int64_t bytes) {
  return absl::StrCat(IoOpName(op), " of ", bytes, " bytes at offset ", offset,
                      " of ", target.file);
}

}  // namespace

absl::Status IoErrnoError(IoOp op, const IoTarget& target, int64_t offset,
                          int64_t bytes, int err) {
  std::string message =
      absl::StrCat(Where(op, target, offset, bytes), " failed: ", strerror(err),
                   " (errno ", err, ")");
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    absl::StrAppend(&message, "; it needs ", target.needed_bytes,
                    " bytes of space");
    return absl::ResourceExhaustedError(message);
  }
  if (err == EIO) return absl::DataLossError(message);
  return absl::InternalError(message);
}

absl::Status CheckTransfer(IoOp op, const IoTarget& target, int64_t offset,
                           int64_t bytes, int64_t result) {
  if (result < 0) {
    return IoErrnoError(op, target, offset, bytes, static_cast<int>(-result));
  }
  if (result != bytes) {
    return absl::DataLossError(
        absl::StrCat("short ", Where(op, target, offset, bytes), ": only ",
                     result, " bytes transferred"));
  }
  return absl::OkStatus();
}

}  // namespace stronghold::storage
