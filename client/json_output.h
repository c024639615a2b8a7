// JSON output (--output json): protos printed with their proto field names
// and with zero-valued fields included, so scripts can rely on every key.
#ifndef STRONGHOLD_CLIENT_JSON_OUTPUT_H_
#define STRONGHOLD_CLIENT_JSON_OUTPUT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"

namespace stronghold::client {

// `multiline` indents for people; single-line suits one-object-per-line
// streams (watch).
absl::StatusOr<std::string> MessageToJson(
    const google::protobuf::Message& message, bool multiline);

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view text);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_JSON_OUTPUT_H_
