// The flags of `submit` and `plan`, which describe a JobSpec.
//
// A spec can come from `--spec FILE` (a JobSpec in JSON with proto field
// names, e.g. {"model":{"layers":2}}) and from flags; flags given beside
// --spec override the file's fields. Fields that are not given stay unset
// (0): the daemon owns the defaults, so the client never invents any.
#ifndef STRONGHOLD_CLIENT_JOB_SPEC_FLAGS_H_
#define STRONGHOLD_CLIENT_JOB_SPEC_FLAGS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "client/arg_parser.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// --spec, the JobSpec field flags (--layers, --lr, --gpu-memory-budget, ...)
// and the repeatable --ssd-dir.
const std::vector<FlagSpec>& JobSpecFlags();

// Builds the spec from --spec (if given) and the flags in `args`.
// INVALID_ARGUMENT names the flag for bad numbers, sizes and enum values, and
// names the file for unreadable or invalid JSON. --ssd-dir given on the
// command line replaces the file's list rather than appending to it.
absl::StatusOr<stronghold::v1::JobSpec> BuildJobSpec(const ParsedArgs& args);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_JOB_SPEC_FLAGS_H_
