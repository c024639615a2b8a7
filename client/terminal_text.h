// Text from the daemon made safe to print on a terminal (docs/security.md).
//
// Display names, error messages and event notes come from whoever submitted
// the job, and other users print them with `list`, `status` and `watch`. A
// name such as $'\e]0;owned\a' would otherwise retitle their terminal, or
// worse (some terminals answer queries by typing into the shell). So table
// output shows every control character and every byte that is not valid
// UTF-8 as \xNN, C1 controls (U+0080..U+009F, which some terminals obey like
// ESC [) and the bidirectional overrides that reorder text on screen as
// \uNNNN, and a backslash as \\ so that the escapes cannot be forged.
// JSON output has its own escaping.
#ifndef STRONGHOLD_CLIENT_TERMINAL_TEXT_H_
#define STRONGHOLD_CLIENT_TERMINAL_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace stronghold::client {

// `text` with what a terminal would interpret escaped (see above); printable
// ASCII and other valid UTF-8 unchanged.
std::string TerminalSafe(absl::string_view text);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_TERMINAL_TEXT_H_
