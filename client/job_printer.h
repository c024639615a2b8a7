// Table output for jobs and their events.
#ifndef STRONGHOLD_CLIENT_JOB_PRINTER_H_
#define STRONGHOLD_CLIENT_JOB_PRINTER_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/types/span.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// One job as "key: value" lines (status, submit, cancel).
void PrintJob(const v1::Job& job, std::ostream& out);

// Jobs as a table: NAME, DISPLAY NAME, STATE, STEP, LOSS, CREATED.
void PrintJobTable(absl::Span<const v1::Job> jobs, std::ostream& out);

// "step 12/30 loss 3.4521 lr 1.00e-03 4.2 samples/s 1075 tok/s step 0.95s";
// "/30" only when `total_steps` > 0.
std::string FormatMetrics(const v1::StepMetrics& metrics, int64_t total_steps);

// One line for a watch event: the metrics line, "state RUNNING", or the
// message (TerminalSafe). Empty for an event with no kind set.
std::string FormatEvent(const v1::JobEvent& event, int64_t total_steps);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_JOB_PRINTER_H_
