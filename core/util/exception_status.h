// LibTorch, the standard library and the containers report failure by
// throwing; core/ reports it as absl::Status, and no exception may end the
// daemon. Each entry point that core/ offers a job (Trainer,
// WindowedEngine, the engine's CPU worker) catches everything and turns the
// exception being handled into a status here:
//   std::bad_alloc, c10::OutOfMemoryError (LibTorch's CUDA allocator),
//     LibTorch's CPU allocator failing       RESOURCE_EXHAUSTED
//   c10::Error                             INTERNAL, LibTorch's message without
//                                          its C++ backtrace
//   any other std::exception               INTERNAL, its what()
//   anything else                          INTERNAL, "unknown exception"
// The message starts with `context` (what was being done: "step 12",
// "creating the trainer").
#ifndef STRONGHOLD_CORE_UTIL_EXCEPTION_STATUS_H_
#define STRONGHOLD_CORE_UTIL_EXCEPTION_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

// The status of the exception being handled. Call only inside a catch
// block (`catch (...) { return StatusFromException("step 3"); }`).
absl::Status StatusFromException(absl::string_view context);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_EXCEPTION_STATUS_H_
