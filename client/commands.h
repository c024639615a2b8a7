// The commands of strongholdctl (what a command is: command.h).
#ifndef STRONGHOLD_CLIENT_COMMANDS_H_
#define STRONGHOLD_CLIENT_COMMANDS_H_

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/command.h"
#include "google/protobuf/message.h"

namespace stronghold::client {

// Every command, in the order --help lists them.
const std::vector<Command>& AllCommands();

// The commands that live in their own files.
Command WatchCommand();
Command FetchCommand();
Command PlanCommand();

// Follows job `name`'s events (metrics of steps after `since_step`) until it
// ends, printing them as `watch` does. Returns the exit code: 0 only when it
// SUCCEEDED; otherwise 1, with a line on context.err naming the state and
// the job's error. `watch` and `submit --wait` use it.
absl::StatusOr<int> FollowJob(const std::string& name, int64_t since_step,
                              CommandContext& context);

// "7" or "jobs/7" -> "jobs/7"; INVALID_ARGUMENT for anything else.
absl::StatusOr<std::string> JobName(absl::string_view arg);

// Prints `message` as JSON, or with `print_table` for table output.
absl::Status PrintResult(const google::protobuf::Message& message,
                         const CommandContext& context,
                         const std::function<void(std::ostream&)>& print_table);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_COMMANDS_H_
