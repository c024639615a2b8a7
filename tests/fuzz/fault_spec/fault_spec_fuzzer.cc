// The --ssd_fault_injection spec (storage/fault_spec) from arbitrary text.
// Besides the sanitizers it checks what the parser promises (faults at
// request n >= 1, at most one read and one write fault), then arms the spec
// on an in-memory device and checks that the first requests fail exactly
// where it says: an armed eio_read@N with N <= 3 fails the N-th read and no
// other; an eio/enospc_write@N fails the N-th write and, as write errors are
// sticky, every later one.
#include <cstddef>
#include <cstdint>
#include <string>

#include "storage/aligned_buffer.h"
#include "storage/fault_spec.h"
#include "storage/memory_block_device.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stronghold;
  using storage::FaultKind;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<storage::FaultSpec> spec = storage::ParseFaultSpec(text);
  if (!spec.ok()) {
    FUZZ_CHECK(spec.status().code() == absl::StatusCode::kInvalidArgument,
               spec.status().ToString());
    FUZZ_CHECK(absl::StrContains(spec.status().message(), "eio_read@N"),
               spec.status().ToString());
    return 0;
  }
  FUZZ_CHECK(spec->text == text, "text not kept");
  int64_t fail_read = 0, fail_write = 0;  // which request fails (0 = none)
  int reads = 0, writes = 0;
  for (const storage::InjectedFault& f : spec->faults) {
    FUZZ_CHECK(f.n >= 1, f.n);
    if (f.kind == FaultKind::kEioRead) {
      ++reads;
      fail_read = f.n;
    } else {
      ++writes;
      // A torn write reports success.
      if (f.kind != FaultKind::kTornWrite) fail_write = f.n;
    }
  }
  FUZZ_CHECK(reads <= 1 && writes <= 1, reads, " read and ", writes,
             " write faults");

  storage::FaultInjectingBlockDevice device(storage::NewMemoryBlockDevice(
      storage::MemoryBlockDeviceOptions(1 << 16)));
  storage::ArmFaults(*spec, &device);
  storage::AlignedBuffer buffer(4096);
  for (int64_t i = 1; i <= 3; ++i) {
    // Write errors are sticky (storage/block_device.h): from the failed one on.
    const bool ok = device.Write(4096 * i, buffer.data(), 4096).ok();
    FUZZ_CHECK(ok == (fail_write == 0 || i < fail_write), "write ", i,
               " of spec ", text);
  }
  for (int64_t i = 1; i <= 3; ++i) {
    const bool ok = device.Read(4096 * i, buffer.data(), 4096).ok();
    FUZZ_CHECK(ok == (i != fail_read), "read ", i, " of spec ", text);
  }
  return 0;
}
