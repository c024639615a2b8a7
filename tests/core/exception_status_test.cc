// Every kind of exception becomes a status of the right code, with context.
#include "core/util/exception_status.h"

#include <torch/torch.h>

#include <new>
#include <stdexcept>

#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

template <typename F>
absl::Status Caught(F throws) {
  try {
    throws();
  } catch (...) {
    return StatusFromException("doing it");
  }
  return absl::OkStatus();
}

TEST(ExceptionStatusTest, EachKindHasItsCodeAndTheContext) {
  const absl::Status bad_alloc = Caught([] { throw std::bad_alloc(); });
  EXPECT_EQ(bad_alloc.code(), absl::StatusCode::kResourceExhausted)
      << bad_alloc;
  EXPECT_EQ(bad_alloc.message().rfind("doing it: out of host memory", 0), 0u)
      << bad_alloc;

  const absl::Status c10 = Caught([] { TORCH_CHECK(false, "no such op"); });
  EXPECT_EQ(c10.code(), absl::StatusCode::kInternal) << c10;
  EXPECT_EQ(c10.message().rfind("doing it: LibTorch: no such op", 0), 0u)
      << c10;
  EXPECT_EQ(c10.message().find("Exception raised from"),
            absl::string_view::npos)
      << "LibTorch's C++ backtrace is not for users: " << c10;

  const absl::Status other = Caught([] { throw std::logic_error("bug"); });
  EXPECT_EQ(other, absl::InternalError("doing it: bug"));
  EXPECT_EQ(Caught([] { throw 3; }),
            absl::InternalError("doing it: unknown exception"));
}

// LibTorch's own allocator failing on the host is what a job too large for
// RAM meets first; it must read as exhaustion, not as an internal error.
TEST(ExceptionStatusTest, LibTorchHostAllocationFailureIsResourceExhausted) {
  const absl::Status s =
      Caught([] { torch::empty({int64_t{1} << 56}, torch::kUInt8); });
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
}

}  // namespace
}  // namespace stronghold::core
