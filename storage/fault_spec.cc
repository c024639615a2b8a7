#include "storage/fault_spec.h"

#include <cerrno>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace stronghold::storage {

namespace {

constexpr char kForms[] =
    "expected a comma-separated list of eio_read@N, eio_write@N, torn_write@N "
    "or enospc_write@N with N >= 1";

bool IsWrite(FaultKind kind) { return kind != FaultKind::kEioRead; }

}  // namespace

absl::StatusOr<FaultSpec> ParseFaultSpec(absl::string_view text) {
  FaultSpec spec;
  spec.text = std::string(text);
  if (text.empty()) return spec;
  bool read_armed = false, write_armed = false;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    const auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", entry, "\": ", why, "; ", kForms));
    };
    const std::vector<absl::string_view> parts = absl::StrSplit(entry, '@');
    if (parts.size() != 2) return bad("not <fault>@<n>");
    InjectedFault fault;
    if (parts[0] == "eio_read") {
      fault.kind = FaultKind::kEioRead;
    } else if (parts[0] == "eio_write") {
      fault.kind = FaultKind::kEioWrite;
    } else if (parts[0] == "torn_write") {
      fault.kind = FaultKind::kTornWrite;
    } else if (parts[0] == "enospc_write") {
      fault.kind = FaultKind::kEnospcWrite;
    } else {
      return bad(absl::StrCat("unknown fault \"", parts[0], "\""));
    }
    if (!absl::SimpleAtoi(parts[1], &fault.n) || fault.n < 1) {
      return bad(
          absl::StrCat("\"", parts[1], "\" is not a request number >= 1"));
    }
    bool& armed = IsWrite(fault.kind) ? write_armed : read_armed;
    if (armed) {
      return bad(absl::StrCat("a second ",
                              IsWrite(fault.kind) ? "write" : "read",
                              " fault (one of each kind at most)"));
    }
    armed = true;
    spec.faults.push_back(fault);
  }
  return spec;
}

void ArmFaults(const FaultSpec& spec, FaultInjectingBlockDevice* device) {
  for (const InjectedFault& f : spec.faults) {
    switch (f.kind) {
      case FaultKind::kEioRead:
        device->FailNthRead(f.n, EIO);
        break;
      case FaultKind::kEioWrite:
        device->FailNthWrite(f.n, EIO);
        break;
      case FaultKind::kTornWrite:
        device->TearNthWrite(f.n, FaultInjectingBlockDevice::Tear::kSilent);
        break;
      case FaultKind::kEnospcWrite:
        device->FailNthWrite(f.n, ENOSPC);
        break;
    }
  }
}

}  // namespace stronghold::storage
