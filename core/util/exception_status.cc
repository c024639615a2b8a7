#include "core/util/exception_status.h"

#include <c10/util/Exception.h>

#include <exception>
#include <new>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stronghold::core {

absl::Status StatusFromException(absl::string_view context) {
  // Rethrown to be told apart by type; most derived first (c10's
  // OutOfMemoryError is a c10::Error, which is a std::exception).
  try {
    throw;
  } catch (const std::bad_alloc& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat(context, ": out of host memory (", e.what(), ")"));
  } catch (const c10::OutOfMemoryError& e) {
    return absl::ResourceExhaustedError(absl::StrCat(
        context, ": out of memory in LibTorch: ", e.what_without_backtrace()));
  } catch (const c10::Error& e) {
    // LibTorch's CPU allocator throws a plain c10::Error (an enforce
    // failure), told apart only by its message (tests/core/
    // exception_status_test.cc notices if a new LibTorch words it otherwise).
    const absl::string_view message = e.what_without_backtrace();
    if (absl::StrContains(message,
                          "DefaultCPUAllocator: can't allocate memory") ||
        absl::StrContains(message, "DefaultCPUAllocator: not enough memory")) {
      return absl::ResourceExhaustedError(
          absl::StrCat(context, ": out of host memory in LibTorch: ", message));
    }
    return absl::InternalError(absl::StrCat(context, ": LibTorch: ", message));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(context, ": ", e.what()));
  } catch (...) {
    return absl::InternalError(absl::StrCat(context, ": unknown exception"));
  }
}

}  // namespace stronghold::core
