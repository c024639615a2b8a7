// Table output for a memory plan (plan) and for the node (node).
#ifndef STRONGHOLD_CLIENT_PLAN_PRINTER_H_
#define STRONGHOLD_CLIENT_PLAN_PRINTER_H_

#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::client {

// The plan's parameters, totals per tier, budgets and whether it fits, then
// a table of its buffers: NAME, TIER, BYTES, SHAPE.
// `architecture` ("gpt", "llama") is the planned spec's, which the plan does
// not carry.
void PrintPlan(const v1::MemoryPlan& plan, absl::string_view architecture,
               std::ostream& out);

// The buffers' table alone.
void PrintBuffers(const v1::MemoryPlan& plan, std::ostream& out);

// The predicted step (plan --predict): step time, throughput, MFU, the
// bottleneck next to each resource's floor, then the alternatives.
void PrintPrediction(const v1::StepPrediction& prediction, std::ostream& out);

// How a plan runs the job, in one line: "the reference (plain autograd on the
// host device)", or "STRONGHOLD engine, window 3 of 8 (automatic: ...), 4
// slots" with the placements that differ from the defaults.
std::string RunsAsText(const v1::MemoryPlan& plan);

// The node's device and versions, then a table of its memory tiers.
void PrintNode(const v1::Node& node, std::ostream& out);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_PLAN_PRINTER_H_
