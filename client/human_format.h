// Human-readable renderings of the API's raw numbers for table output.
#ifndef STRONGHOLD_CLIENT_HUMAN_FORMAT_H_
#define STRONGHOLD_CLIENT_HUMAN_FORMAT_H_

#include <cstdint>
#include <string>

#include "google/protobuf/timestamp.pb.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// Binary units with one decimal: 512 -> "512 B", 12897484 -> "12.3 MiB".
std::string HumanBytes(int64_t bytes);

// Large counts: 124439808 -> "124.4M" (decimal: parameters, FLOPs).
std::string HumanCount(double count);

// Local time "2024-05-01 12:34:56"; "-" for an unset timestamp.
std::string FormatTimestamp(const google::protobuf::Timestamp& time);

// "RUNNING"; "-" for STATE_UNSPECIFIED.
std::string StateName(v1::Job::State state);

// Whether `state` is final (SUCCEEDED, FAILED, CANCELLED).
bool IsTerminal(v1::Job::State state);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_HUMAN_FORMAT_H_
