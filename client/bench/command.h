// `strongholdctl bench`: the seed's benchmark runs and cases through the
// daemon (docs/bench.md). Its pieces are the bench_* libraries beside it.
#ifndef STRONGHOLD_CLIENT_BENCH_COMMAND_H_
#define STRONGHOLD_CLIENT_BENCH_COMMAND_H_

#include "client/command.h"

namespace stronghold::client {

Command BenchCommand();

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_BENCH_COMMAND_H_
