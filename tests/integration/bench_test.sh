#!/usr/bin/env bash
# End to end: `strongholdctl bench` on a tiny model against a real strongholdd.
# Every case writes its logs, CSV and PNG; the figures in them parse and agree
# with each other and with the planner; the scaling fit reports R^2; a method
# that cannot fit is reported with the planner's reason, not skipped.
set -uo pipefail

RUNFILES="${TEST_SRCDIR:-$PWD/..}/stronghold"
DAEMON="$RUNFILES/server/strongholdd"
CTL="$RUNFILES/client/strongholdctl"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/bench.XXXXXX")
SOCK_DIR=$(mktemp -d /tmp/sh-bench.XXXXXX)  # socket paths are short
export STRONGHOLD_DAEMON="unix:$SOCK_DIR/d.sock"
PID=""
passed=0
failed=0

ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$SOCK_DIR"; }
trap cleanup EXIT

# No metrics endpoint: its fixed default port may be taken by another daemon.
"$DAEMON" --socket "$SOCK_DIR/d.sock" --state_dir "$WORK/state" --metrics_listen= \
  >"$WORK/daemon.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do "$CTL" node >/dev/null 2>&1 && break; sleep 0.1; done
"$CTL" node >/dev/null || { echo "daemon did not come up"; cat "$WORK/daemon.log"; exit 1; }

# The tiny model: 220,544 parameters at 4 layers.
TINY=(--hidden 64 --heads 4 --seq-len 64 --batch 2 --vocab 256 --steps 3)
# Budgets under which the methods' largest sizes differ: RESIDENT is bound by
# the device budget, L2L and STRONGHOLD by the host budget.
BUDGETS=(--gpu-memory-budget 8MiB --host-memory-budget 12MiB)

# Checks a run's log: the seed's figures parse and agree; prints its result.
check_log() {  # check_log LOG LAYERS STEPS WARMUP
  python3 - "$@" <<'PY'
import re, sys
path, layers, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
text = open(path).read()
def fields(line):
    head, *rest = line.split(" | ")
    return head, dict(f.split(": ", 1) for f in rest)
h, V, S = 64, 256, 64
params = int(re.search(r"^total parameters: (\d+)$", text, re.M).group(1))
assert params == layers * (12 * h * h + 13 * h) + (V + S) * h + 2 * h, params
assert re.search(r"^device peak: [0-9.]+ TFLOPS nominal", text, re.M), "peak source"
warm = [fields(l) for l in text.splitlines() if l.startswith("warmup ")]
meas = [fields(l) for l in text.splitlines() if l.startswith("iteration ")]
assert len(warm) == warmup and len(meas) == steps - warmup, (len(warm), len(meas))
for head, f in warm + meas:
    ms = float(f["elapsed time per iteration (ms)"])
    sps = float(f["SamplesPerSec"])
    assert ms > 0 and abs(sps - 2 * 1000 / ms) <= 0.01 * sps, (ms, sps)
    assert abs(float(f["tokens/s"]) - 64 * sps) <= 0.01 * 64 * sps + 0.1
    assert float(f["model TFLOPS"]) > 0 and f["MFU"].endswith("%")
    for k in ("compute (ms)", "H2D wait (ms)", "D2H wait (ms)", "optimizer (ms)"):
        assert float(f[k]) >= 0, k
summary = [fields(l) for l in text.splitlines() if l.startswith("summary | ")]
assert len(summary) == 1
s = summary[0][1]
mean = sum(float(f["elapsed time per iteration (ms)"]) for _, f in meas) / len(meas)
assert abs(float(s["elapsed time per iteration (ms)"]) - mean) <= 0.002 + 1e-3 * mean
assert s["iterations"] == f"{warmup + 1}-{steps}", s["iterations"]
assert text.rstrip().endswith("result: SUCCEEDED"), text[-200:]
PY
}

png_ok() {  # a PNG with a plausible size
  python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert w >= 300 and h >= 200 and len(data) > 5000, (w, h, len(data))
PY
}

newest() { ls -t "$@" 2>/dev/null | head -n 1; }

# --- plain runs: every method, one of them cannot fit its device budget
OUT="$WORK/run"
"$CTL" bench --method all --layers 4 "${TINY[@]}" --gpu-memory-budget 4MiB \
  --out-dir "$OUT" >"$WORK/run.txt" 2>&1
check "bench --method all exits 0 when a method does not fit" test $? -eq 0
check "three logs with the seed's names" test "$(ls "$OUT" | grep -cE \
  '^log_(resident|l2l|stronghold)_l-4_h-64_bs-2_ws-[0-9]+_[0-9]{8}-[0-9]{6}\.txt$')" -eq 3
for m in l2l stronghold; do
  check "$m log parses" check_log "$(newest "$OUT"/log_${m}_*)" 4 3 1
done
res_log=$(newest "$OUT"/log_resident_*)
check "RESIDENT reported as not fitting, with the planner's numbers" \
  grep -qE "^result: DOES NOT FIT: device memory: needs .* budget 4.0 MiB \(4194304 bytes\)" "$res_log"
check "its plan is in the log" grep -q "^plan: does not fit; device" "$res_log"
check "the table says so" grep -qE "^RESIDENT +DOES NOT FIT" "$WORK/run.txt"
check "the table has the seed's columns" grep -q "Throughput.*Trainable Size.*Layers.*Hidden Size" "$WORK/run.txt"

# --- a plotter that cannot run fails before any job runs
jobs_before=$("$CTL" list --output json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
"$CTL" bench --case largest "${TINY[@]}" --python /nonexistent/python3 \
  --out-dir "$WORK/noplot" >/dev/null 2>"$WORK/noplot.txt"
rc=$?
check "missing plotter -> exit 1" test "$rc" -eq 1
check "... with advice naming --no-plot" grep -q -- "--no-plot" "$WORK/noplot.txt"
jobs_after=$("$CTL" list --output json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
check "... and before submitting anything" test "$jobs_before" -eq "$jobs_after"

# --- largest: planner search, confirmed by a run; the planner agrees at L, L+1
OUT="$WORK/largest"
"$CTL" bench --case largest "${TINY[@]}" "${BUDGETS[@]}" --window 2 \
  --out-dir "$OUT" >"$WORK/largest.txt" 2>&1
check "largest exits 0" test $? -eq 0
csv=$(newest "$OUT"/bench_largest_*.csv)
check "largest CSV" test -s "$csv"
check "largest PNG" png_ok "$(newest "$OUT"/bench_largest_*.png)"
python3 - "$csv" >"$WORK/largest.rows" <<'PY' && ok "largest CSV parses" || bad "largest CSV parses"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r["method"] for r in rows] == ["resident", "l2l", "stronghold"], rows
for r in rows:
    assert int(r["largest_layers"]) >= 1, r
    assert r["confirmed"].startswith("SUCCEEDED"), r
    assert float(r["samples_per_s"]) > 0 and "memory" in r["limit"], r
    print(r["method"], r["largest_layers"])
# Under these budgets offloading fits more layers than keeping all resident.
layers = {r["method"]: int(r["largest_layers"]) for r in rows}
assert layers["stronghold"] > layers["resident"] and layers["l2l"] > layers["resident"], layers
PY
fits() {  # fits LAYERS: the planner's answer for $method under BUDGETS
  "$CTL" plan --method "$method" --layers "$1" --window "$(( $1 < 2 ? $1 : 2 ))" \
    --hidden 64 --heads 4 --seq-len 64 --batch 2 --vocab 256 "${BUDGETS[@]}" --output json |
    python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin).get("fits") else 1)'
}
not() { ! "$@"; }
while read -r method layers; do
  check "$method: the planner fits $layers layers" fits "$layers"
  check "$method: ... and not $((layers + 1))" not fits $((layers + 1))
done <"$WORK/largest.rows"
check "largest table" grep -q "Largest Trainable Size" "$WORK/largest.txt"
check "largest says what stops each method" \
  grep -qE "^STRONGHOLD: [0-9]+ layers do not fit: host memory: needs" "$WORK/largest.txt"

# --- largest when nothing fits: every method reported, with the reason
OUT="$WORK/nothing"
"$CTL" bench --case largest "${TINY[@]}" --gpu-memory-budget 100KiB \
  --out-dir "$OUT" >"$WORK/nothing.txt" 2>&1
check "largest with a tiny budget exits 0" test $? -eq 0
check "... and still draws its plot" png_ok "$(newest "$OUT"/bench_largest_*.png)"
python3 - "$(newest "$OUT"/bench_largest_*.csv)" <<'PY' && ok "every method: 0 layers, with the reason" || bad "every method: 0 layers, with the reason"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 3, rows
for r in rows:
    assert r["largest_layers"] == "0" and r["confirmed"] == "DOES NOT FIT", r
    assert r["limit"].startswith("not even 1 layer fits: device memory: needs"), r
    assert int(r["device_plan_bytes"]) > int(r["device_budget_bytes"]) == 102400, r
PY

# --- throughput at each method's largest size
OUT="$WORK/throughput"
"$CTL" bench --case throughput "${TINY[@]}" "${BUDGETS[@]}" --window 2 \
  --out-dir "$OUT" >"$WORK/throughput.txt" 2>&1
check "throughput exits 0" test $? -eq 0
check "throughput PNG" png_ok "$(newest "$OUT"/bench_throughput_*.png)"
python3 - "$(newest "$OUT"/bench_throughput_*.csv)" <<'PY' && ok "throughput CSV parses" || bad "throughput CSV parses"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
sizes = {r["size"] for r in rows}
assert any(s.startswith("resident") for s in sizes), sizes
for size in sizes:
    group = [r for r in rows if r["size"] == size]
    assert [r["method"] for r in group] == ["resident", "l2l", "stronghold"], group
    owner = size.split("/")[0].split(" ")[0]
    mine = next(r for r in group if r["method"] == owner)
    assert mine["outcome"] == "SUCCEEDED" and float(mine["relative"]) == 1.0, mine
    for r in group:
        if r["outcome"] == "SUCCEEDED":
            assert float(r["samples_per_s"]) > 0 and float(r["iteration_ms"]) > 0, r
            assert r["log"] and int(r["layers"]) == int(r["size_layers"]), r
        else:
            assert r["outcome"] == "DOES NOT FIT" and "memory: needs" in r["reason"], r
# RESIDENT cannot fit the offloading methods' largest sizes.
assert any(r["method"] == "resident" and r["outcome"] == "DOES NOT FIT" for r in rows), rows
PY

# --- scaling: iteration time against layers, with a fitted line
OUT="$WORK/scaling"
"$CTL" bench --case scaling "${TINY[@]}" --layers-list 1,2,3 --out-dir "$OUT" \
  >"$WORK/scaling.txt" 2>&1
check "scaling exits 0" test $? -eq 0
check "scaling PNG" png_ok "$(newest "$OUT"/bench_scaling_*.png)"
check "scaling prints slope and R^2" \
  grep -qE "^STRONGHOLD: iteration time = -?[0-9.]+ ms/layer x layers \+ -?[0-9.]+ ms, R\^2 = [0-9.]+ \(3 points\)" "$WORK/scaling.txt"
python3 - "$(newest "$OUT"/bench_scaling_fit_*.csv)" "$(ls "$OUT"/bench_scaling_2*.csv)" <<'PY' && ok "scaling fit agrees with its points" || bad "scaling fit agrees with its points"
import csv, sys
fit = list(csv.DictReader(open(sys.argv[1])))
points = list(csv.DictReader(open(sys.argv[2])))
assert len(fit) == 1 and fit[0]["method"] == "stronghold" and int(fit[0]["points"]) == 3
xs = [int(p["layers"]) for p in points]
ys = [float(p["iteration_ms"]) for p in points]
assert xs == [1, 2, 3], xs
n = len(xs); mx = sum(xs) / n; my = sum(ys) / n
slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
r2 = 1 - sum((y - (slope * x + my - slope * mx)) ** 2 for x, y in zip(xs, ys)) / sum((y - my) ** 2 for y in ys)
assert abs(float(fit[0]["slope_ms_per_layer"]) - slope) < 1e-3, (fit, slope)
# The points in the CSV are rounded (iteration_ms to 3 decimals): a noisy,
# low-R^2 fit recomputed from them moves in the 4th decimal.
assert abs(float(fit[0]["r2"]) - r2) < 2e-3 and 0 <= r2 <= 1, (fit, r2)
PY

# --- window sweep, the automatic window included
OUT="$WORK/window"
"$CTL" bench --case window "${TINY[@]}" --layers 4 --windows 0,1,2,4 \
  --out-dir "$OUT" >"$WORK/window.txt" 2>&1
check "window exits 0" test $? -eq 0
check "window PNG" png_ok "$(newest "$OUT"/bench_window_*.png)"
python3 - "$(newest "$OUT"/bench_window_*.csv)" <<'PY' && ok "window CSV parses" || bad "window CSV parses"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [int(r["window_requested"]) for r in rows] == [0, 1, 2, 4], rows
for r in rows:
    assert r["outcome"] == "SUCCEEDED" and float(r["iteration_ms"]) > 0, r
    used = int(r["window_used"])
    assert 1 <= used <= 4 and (r["window_requested"] == "0" or used == int(r["window_requested"])), r
# A larger window holds more layers on the device.
peak = {int(r["window_requested"]): int(r["device_peak_bytes"]) for r in rows}
assert peak[1] < peak[2] < peak[4], peak
PY
auto_log=$(newest "$OUT"/log_stronghold_l-4_*_ws-0_*)
check "automatic window: the choice is in the log" grep -q "^note: window [0-9]* chosen" "$auto_log"
check "automatic window: profiling reported apart" check_log "$auto_log" 4 3 2

# --- --no-plot writes the CSV only
OUT="$WORK/csv-only"
"$CTL" bench --case window "${TINY[@]}" --layers 2 --windows 1 --no-plot --out-dir "$OUT" >/dev/null 2>&1
check "--no-plot: CSV, no PNG" bash -c "ls '$OUT'/bench_window_*.csv >/dev/null && ! ls '$OUT'/*.png 2>/dev/null"

kill -TERM "$PID"; wait "$PID"; PID=""
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
