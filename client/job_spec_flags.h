// The flags of `submit` and `plan`, which describe a JobSpec.
//
// A spec can come from `--spec FILE` (a JobSpec in JSON with proto field
// names, e.g. {"model":{"layers":2}}) and from flags; flags given beside
// --spec override the file's fields. Fields that are not given stay unset
// (0): the daemon owns the defaults, so the client never invents any.
//
// `bench` builds its jobs with the same flags, from its own base spec (the
// seed's sizes) and with --method declared itself (it takes a list); that is
// what JobSpecFlagsOptions is for.
#ifndef STRONGHOLD_CLIENT_JOB_SPEC_FLAGS_H_
#define STRONGHOLD_CLIENT_JOB_SPEC_FLAGS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/arg_parser.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// Reads an environment variable: nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;

// How a command other than submit and plan uses these flags.
struct JobSpecFlagsOptions {
  // Where --dist-from-env reads the variables; null = the process's
  // environment (tests pass their own).
  EnvLookup env;
  // The spec that --spec and the flags go on top of. Empty by default: the
  // daemon fills in what is left unset.
  v1::JobSpec base;
  // Names of spec flags (e.g. "method") that the command declares itself,
  // with a meaning of its own: left out of the flags below and not read by
  // BuildJobSpec.
  std::vector<std::string> own_flags;
};

// --spec, the JobSpec field flags (--layers, --lr, --gpu-memory-budget, ...)
// and the repeatable --ssd-dir.
const std::vector<FlagSpec>& JobSpecFlags();
// The same less `options.own_flags`.
std::vector<FlagSpec> JobSpecFlags(const JobSpecFlagsOptions& options);

// --dist-from-env: the distributed section from torchrun's variables
// (WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), Slurm's where
// those are unset (SLURM_NTASKS, SLURM_PROCID, SLURM_LOCALID), and the job
// key from STRONGHOLD_JOB_KEY (kept off the command line, which every user
// of the host can read). INVALID_ARGUMENT naming the variable that is
// missing or bad; MASTER_* are not needed for one rank.
absl::Status ApplyDistributedEnv(const EnvLookup& env, v1::JobSpec* spec);

// Builds the spec from `options.base`, then --spec (if given: the fields the
// file sets replace the base's and its lists are appended; a 0 in a field
// without presence, such as offload.window, cannot be told from unset and
// leaves the base's value, so give that as a flag), then --dist-from-env,
// then the flags in `args`.
// INVALID_ARGUMENT names the flag for bad numbers, sizes and enum values, and
// names the file for unreadable or invalid JSON. --ssd-dir given on the
// command line replaces the file's list rather than appending to it.
absl::StatusOr<v1::JobSpec> BuildJobSpec(
    const ParsedArgs& args, const JobSpecFlagsOptions& options = {});

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_JOB_SPEC_FLAGS_H_
