// A textual description of faults to arm on a FaultInjectingBlockDevice,
// for the daemon's testing-only --ssd_fault_injection flag: a comma-separated
// list of <fault>@<n>, n >= 1, counted per kind of request (reads or writes)
// from when the device is wrapped, each firing once:
//
//   eio_read@N      the N-th read request fails with EIO
//   eio_write@N     the N-th write request fails with EIO
//   torn_write@N    the N-th write request lands only its first half and
//                   reports success (a lying drive cache): only the
//                   extent store's CRC32C catches it, on the next read
//   enospc_write@N  the N-th write request fails with ENOSPC
//
// Example: "eio_read@60" or "torn_write@61,eio_read@200".
#ifndef STRONGHOLD_STORAGE_FAULT_SPEC_H_
#define STRONGHOLD_STORAGE_FAULT_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/fault_injecting_block_device.h"

namespace stronghold::storage {

enum class FaultKind { kEioRead, kEioWrite, kTornWrite, kEnospcWrite };

struct InjectedFault {
  FaultKind kind = FaultKind::kEioRead;
  int64_t n = 1;  // the n-th request of its kind (reads or writes), 1-based
};

struct FaultSpec {
  std::vector<InjectedFault> faults;
  std::string text;  // as given, for logs
};

// INVALID_ARGUMENT naming the offending entry and the accepted forms. An
// empty string is an empty spec. Two faults on the same kind of request
// (say two write faults) are refused: the wrapper arms one per kind.
absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view text);

// Arms every fault of `spec` on `device`, counting from now.
void ArmFaults(const FaultSpec& spec, FaultInjectingBlockDevice* device);

}  // namespace stronghold::storage

#endif  // STRONGHOLD_STORAGE_FAULT_SPEC_H_
