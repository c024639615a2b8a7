// Conversion between the API's JobSpec and the engine's JobConfig. Zero or
// unset API fields take the documented defaults (docs/api.md), so a stored
// job always shows the exact configuration it ran with.
#ifndef STRONGHOLD_SERVER_SPEC_CONVERT_H_
#define STRONGHOLD_SERVER_SPEC_CONVERT_H_

#include "core/plan/job_config.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// Fills defaults into unset fields and converts. Does not validate.
core::JobConfig ToJobConfig(const stronghold::v1::JobSpec& spec);

// The effective spec (every default filled in).
stronghold::v1::JobSpec ToJobSpec(const core::JobConfig& config);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_SPEC_CONVERT_H_
