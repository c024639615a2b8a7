#!/bin/bash
# `strongholdctl bench --world-size 2` through two real daemons on loopback
# (docs/bench.md, "Many ranks"): each run is one job on both daemons; the
# table, the log, the CSV and --output json give the whole job's samples/s
# and tokens/s and each rank's samples/s and iteration time, and those
# figures are present, positive and consistent with each other and with what
# each rank's daemon reported. Bad rank options are refused naming the flag.
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/two_daemons_lib.sh"
SHAPE=(--method stronghold --layers 2 --hidden 64 --heads 4 --seq-len 64
       --vocab 256 --steps 4 --collective-timeout 30 --no-plot)
TINY=("${SHAPE[@]}" --batch 4)
RANKS=(--world-size 2 --daemons "unix:$SOCK,unix:$B_SOCK")

# refused WHAT PATTERN ARGS...: exit code 2 and a message matching PATTERN.
refused() {
  local what=$1 pattern=$2; shift 2
  "$CTL" bench --out-dir "$WORK/refused" "$@" >"$WORK/refused.out" 2>&1
  local rc=$?
  check "$what: usage error ($rc)" [ "$rc" = 2 ]
  check "$what: names it" grep -q -- "$pattern" "$WORK/refused.out"
}
refused "--world-size 0" "--world-size: invalid value \"0\"" "${TINY[@]}" --world-size 0 \
  --daemons "unix:$SOCK"
refused "--world-size 1025" "--world-size: invalid value \"1025\"" \
  "${TINY[@]}" --world-size 1025 --daemons "unix:$SOCK"
refused "no --daemons" "--daemons: missing" "${TINY[@]}" --world-size 2
refused "fewer daemons than ranks" "--daemons: 1 address(es) for --world-size 2" \
  "${TINY[@]}" --world-size 2 --daemons "unix:$SOCK"
refused "a batch that the ranks cannot split" \
  "--batch: 6 is not a multiple of --world-size 2 x --micro-batch 4 (= 8)" \
  "${SHAPE[@]}" "${RANKS[@]}" --batch 6 --micro-batch 4
refused "daemons on another host without --master-addr" "--master-addr: missing" \
  "${TINY[@]}" --world-size 2 --daemons "unix:$SOCK,node-7:7070"
refused "--rank (the bench sets every rank)" "unknown flag --rank" \
  "${TINY[@]}" "${RANKS[@]}" --rank 1
check "nothing was submitted by a refused bench" \
  [ "$(A list --output json | python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("jobs", [])))')" = 0 ]

# --- one run on two ranks
PORT=$(free_port)
"$CTL" bench "${TINY[@]}" "${RANKS[@]}" --master-port "$PORT" \
  --out-dir "$WORK/results" >"$WORK/run.out" 2>&1
rc=$?
cat "$WORK/run.out"
check "bench --world-size 2 succeeds ($rc)" [ "$rc" = 0 ]
check "the table has the per-rank columns" \
  grep -q "Per-rank samples/s" "$WORK/run.out"
LOG=$(ls "$WORK"/results/log_stronghold_*.txt 2>/dev/null | head -1)
check "a log ($LOG)" [ -f "$LOG" ]
J0=$(sed -n 's/^rank 0: \(jobs\/[0-9]*\) on .*/\1/p' "$LOG")
J1=$(sed -n 's/^rank 1: \(jobs\/[0-9]*\) on .*/\1/p' "$LOG")
check "rank 0's job ran on the first daemon ($J0)" \
  [ "$(A status "$J0" --output json | json_field state)" = SUCCEEDED ]
check "rank 1's job ran on the second ($J1)" \
  [ "$(B status "$J1" --output json | json_field state)" = SUCCEEDED ]
B status "$J1" --output json >"$WORK/j1.json"
check "rank 1's job is rank 1 of 2 with a redacted key" python3 -c "
import json, sys
d = json.load(open('$WORK/j1.json'))['spec']['distributed']
sys.exit(0 if d.get('rank') == 1 and d.get('world_size') == 2 and d.get('job_key') == '<redacted>' else 1)"
A watch "$J0" --output json >"$WORK/r0.json"
B watch "$J1" --output json >"$WORK/r1.json"

# The figures: present, positive, consistent with each other (whole job vs
# ranks) and with each rank's daemon's own step times.
check "the log's figures agree" python3 - "$LOG" "$WORK/r0.json" "$WORK/r1.json" "$WORK/run.out" <<'PY'
import json, sys
log, daemons, table = sys.argv[1], sys.argv[2:4], open(sys.argv[4]).read()
B, S, N, WARMUP = 4, 64, 2, 1
def fields(line):
    head, *rest = line.split(" | ")
    return head, dict(f.split(": ", 1) for f in rest)
lines = open(log).read().splitlines()
job = [fields(l)[1] for l in lines if l.startswith("summary | ")]
ranks = {int(l.split()[1]): fields(l)[1] for l in lines if l.startswith("rank ") and " summary | " in l}
assert len(job) == 1 and sorted(ranks) == [0, 1], (job, ranks)
whole = float(job[0]["SamplesPerSec"])
tokens = float(job[0]["tokens/s"])
per = [float(ranks[r]["SamplesPerSec"]) for r in (0, 1)]
ms = [float(ranks[r]["elapsed time per iteration (ms)"]) for r in (0, 1)]
print("whole job:", whole, "samples/s,", tokens, "tokens/s; per rank:", per, "samples/s,", ms, "ms")
assert whole > 0 and tokens > 0 and all(p > 0 for p in per) and all(m > 0 for m in ms)
assert abs(tokens - S * whole) <= 1e-3 * tokens + 0.1, (tokens, whole)
# Each rank's share is B/N samples per its own iteration time.
for p, m in zip(per, ms):
    assert abs(p - (B / N) * 1000 / m) <= 2e-3 * p + 1e-4, (p, m)
# The job's step is its slowest rank's: whole <= N x the slowest rank's
# share, and >= the harmonic mean of the shares (the ranks' times summed).
eps = 1e-3
assert whole <= N * min(per) * (1 + eps) + 1e-4, (whole, per)
harmonic = N / sum(1 / p for p in per)
assert whole >= harmonic * (1 - eps) - 1e-4, (whole, harmonic)
# Each rank's iteration time is the mean of what its daemon reported.
for r, path in enumerate(daemons):
    steps = [json.loads(l)["metrics"] for l in open(path) if '"metrics"' in l]
    measured = [m["step_s"] for m in steps if int(m["step"]) > WARMUP]
    assert len(measured) == 3, measured
    mean_ms = 1000 * sum(measured) / len(measured)
    assert abs(ms[r] - mean_ms) <= 2e-3 + 1e-3 * mean_ms, (r, ms[r], mean_ms)
    # The daemon reports the whole job's rate over its own step time.
    for m in steps:
        assert abs(m["samples_per_s"] - B / m["step_s"]) <= 1e-6 * m["samples_per_s"]
# The job's iterations: each step's slowest rank.
job_ms = [float(fields(l)[1]["elapsed time per iteration (ms)"]) for l in lines if l.startswith("iteration ")]
slowest = []
for step in range(WARMUP + 1, 5):
    slowest.append(max(1000 * json.loads(l)["metrics"]["step_s"] for p in daemons for l in open(p)
                       if '"metrics"' in l and int(json.loads(l)["metrics"]["step"]) == step))
assert len(job_ms) == 3 and all(abs(a - b) <= 2e-3 for a, b in zip(job_ms, slowest)), (job_ms, slowest)
# The table shows the same figures.
row = [l for l in table.splitlines() if l.startswith("STRONGHOLD")]
assert row and f"{whole:.4f}" in row[0] and f"{per[0]:.4f} / {per[1]:.4f}" in row[0], row
PY

# --- a case's CSV carries the ranks too, and --output json prints each run
# as a line of JSON on standard output (the tables go to standard error)
PORT=$(free_port)
"$CTL" --output json bench "${TINY[@]}" "${RANKS[@]}" --master-port "$PORT" \
  --case window --windows 1 --out-dir "$WORK/window" >"$WORK/window.json" \
  2>"$WORK/window.err"
rc=$?
check "bench --case window --world-size 2 --output json succeeds ($rc)" [ "$rc" = 0 ]
check "its JSON line has the whole job's and each rank's figures" python3 - "$WORK/window.json" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
assert len(runs) == 1, runs
r = runs[0]
assert r["outcome"] == "SUCCEEDED" and r["world_size"] == 2 and r["window_used"] == 1, r
per = [x["samples_per_s"] for x in r["ranks"]]
assert [x["rank"] for x in r["ranks"]] == [0, 1] and all(x["job"] for x in r["ranks"]), r
assert r["samples_per_s"] > 0 and min(per) > 0, r
assert r["samples_per_s"] <= 2 * min(per) * (1 + 1e-9), r
assert r["samples_per_s"] >= 2 / sum(1 / p for p in per) * (1 - 1e-9), r
assert abs(r["tokens_per_s"] - 64 * r["samples_per_s"]) <= 1e-6 * r["tokens_per_s"], r
for x in r["ranks"]:
    assert abs(x["samples_per_s"] - 2 * 1000 / x["iteration_ms"]) <= 1e-6 * x["samples_per_s"], x
PY
check "the table went to standard error" grep -q "Per-rank samples/s" "$WORK/window.err"
check "its CSV has the whole job's and each rank's figures" python3 - "$WORK"/window/bench_window_*.csv <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 1 and rows[0]["outcome"] == "SUCCEEDED", rows
r = rows[0]
per = [float(x) for x in r["rank_samples_per_s"].split(";")]
ms = [float(x) for x in r["rank_iteration_ms"].split(";")]
whole = float(r["samples_per_s"])
assert r["world_size"] == "2" and len(per) == 2 and len(ms) == 2, r
assert whole > 0 and min(per) > 0 and whole <= 2 * min(per) * 1.001 + 1e-4, (whole, per)
assert abs(float(r["tokens_per_s"]) - 64 * whole) <= 1e-3 * 64 * whole + 0.01, r
PY

finish
