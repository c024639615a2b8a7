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

}  // namespace stronghold::v1

#endif  // STRONGHOLD_PROTO_STRONGHOLD_V1_NAMES_H_
