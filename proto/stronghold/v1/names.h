// How the CLI, bench logs and metric labels spell the API's enums.
#ifndef STRONGHOLD_PROTO_STRONGHOLD_V1_NAMES_H_
#define STRONGHOLD_PROTO_STRONGHOLD_V1_NAMES_H_

#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::v1 {

// "resident" (also for OFFLOAD_METHOD_UNSPECIFIED, which means it), "l2l",
// "stronghold": the spelling of `strongholdctl --method`.
inline const char* OffloadMethodName(OffloadMethod method) {
  switch (method) {
    case L2L:
      return "l2l";
    case STRONGHOLD:
      return "stronghold";
    default:
      return "resident";
  }
}

// "fp32" (also for PRECISION_UNSPECIFIED, which means it), "bf16", "fp16":
// the spelling of `strongholdctl --precision`.
inline const char* PrecisionName(Precision precision) {
  switch (precision) {
    case BF16:
      return "bf16";
    case FP16:
      return "fp16";
    default:
      return "fp32";
  }
}

}  // namespace stronghold::v1

#endif  // STRONGHOLD_PROTO_STRONGHOLD_V1_NAMES_H_
