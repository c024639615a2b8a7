// Status helpers shared by every package (Abseil 20220623 has no
// RETURN_IF_ERROR / ASSIGN_OR_RETURN of its own).
#ifndef STRONGHOLD_CORE_UTIL_STATUS_MACROS_H_
#define STRONGHOLD_CORE_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SH_CONCAT_INNER_(a, b) a##b
#define SH_CONCAT_(a, b) SH_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    const ::absl::Status sh_status_ = (expr); \
    if (!sh_status_.ok()) return sh_status_;  \
  } while (0)

// `ASSIGN_OR_RETURN(auto x, Fn());` assigns the value of an absl::StatusOr or
// returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  SH_ASSIGN_OR_RETURN_IMPL_(SH_CONCAT_(sh_statusor_, __LINE__), lhs, expr)
#define SH_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // STRONGHOLD_CORE_UTIL_STATUS_MACROS_H_
