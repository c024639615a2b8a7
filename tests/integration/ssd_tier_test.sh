#!/usr/bin/env bash
# The NVMe tier end to end: with a host budget too small for the training
# state and an --ssd-dir, `plan` puts the layers' Adam moments (in bf16 also
# their fp32 masters; at a smaller budget, with 12 layers, some fp32 masters
# or 16-bit working copies) on the ssd tier, the job trains,
# and its checkpoint is
# bit-identical to the same job held in RAM; the tier's files are gone
# afterwards. A job whose tier directory is gone by the time it runs ends
# FAILED (PERMISSION_DENIED naming offload.ssd_dirs), and the next job
# succeeds.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"

start_daemon
SSD="$SSD_ROOT"  # the daemon's --ssd_root itself
JOB=(--layers 8 --hidden 256 --heads 4 --seq-len 64 --vocab 512 --batch 4 --micro-batch 2
     --steps 6 --method stronghold --window 2)
# The state needs ~134 MiB of host memory on the CPU device; 117 MiB (one
# layer's moments of staging for checkpoints included) forces
# the moments of 7 of the 8 layers out.
SHORT=(--host-memory-budget 117MiB)

"$CTL" plan "${JOB[@]}" "${SHORT[@]}" >"$WORK/plan_ram.txt" 2>&1
check "without an ssd dir the short budget does not fit" grep -q "^fits: *no" "$WORK/plan_ram.txt"
"$CTL" plan "${JOB[@]}" "${SHORT[@]}" --ssd-dir "$SSD" >"$WORK/plan.txt" 2>&1
check "with one it fits" grep -q "^fits: *yes" "$WORK/plan.txt"
check "plan shows the moments on the ssd tier" \
  grep -q "ssd.adam.exp_avg+exp_avg_sq *ssd .*layers 0..6" "$WORK/plan.txt"
check "plan shows the staging slots" grep -q "host.staging.ssd *host" "$WORK/plan.txt"

"$CTL" submit --name spilled "${JOB[@]}" "${SHORT[@]}" --ssd-dir "$SSD" >/dev/null
"$CTL" submit --name ram "${JOB[@]}" >/dev/null
"$CTL" watch 1 >"$WORK/watch1.txt" 2>&1
check "spilled job succeeds" test $? -eq 0
"$CTL" watch 2 >/dev/null 2>&1
check "RAM job succeeds" test $? -eq 0
same_checkpoints() {  # same_checkpoints SPILLED_JOB RAM_JOB LABEL: the final checkpoints agree
  local f a b
  for f in model optimizer; do
    a=$(sha256sum "$STATE/jobs/$1/checkpoints/step-000006/$f.safetensors" | cut -d' ' -f1)
    b=$(sha256sum "$STATE/jobs/$2/checkpoints/step-000006/$f.safetensors" | cut -d' ' -f1)
    check "$3$f.safetensors bit-identical to the RAM job's" test "$a" = "$b"
  done
  check "$3the tier's files are removed" test -z "$(ls -A "$SSD")"
}
same_checkpoints 1 2 ""

# In bf16 the fp32 masters go to the tier too: 104 MiB fits only with the
# masters and moments of 7 of the 8 layers there (moments alone cannot make
# it), and the spilled job's checkpoint equals the bf16 RAM job's.
# tier_vs_ram LABEL BUDGET PLAN_PATTERN TIER_JOB JOB_ARGS...: `plan` at
# BUDGET shows PLAN_PATTERN; the job at BUDGET on the tier (number TIER_JOB)
# and the same job in RAM (the next number) succeed with equal checkpoints.
tier_vs_ram() {
  local label=$1 budget=$2 pattern=$3 id=$4
  shift 4
  "$CTL" plan "$@" --host-memory-budget "$budget" --ssd-dir "$SSD" >"$WORK/plan_$id.txt" 2>&1
  check "$label: the plan shows $pattern" grep -q "$pattern" "$WORK/plan_$id.txt"
  "$CTL" submit --name "tier_$id" "$@" --host-memory-budget "$budget" --ssd-dir "$SSD" >/dev/null
  "$CTL" submit --name "ram_$id" "$@" >/dev/null
  check "$label: the job on the tier succeeds" wait_state "$id" SUCCEEDED
  check "$label: the RAM job succeeds" wait_state $((id + 1)) SUCCEEDED
  same_checkpoints "$id" $((id + 1)) "$label: "
}
BF16=("${JOB[@]}" --precision bf16)
tier_vs_ram bf16 104MiB "ssd.adam.exp_avg+exp_avg_sq+master *ssd .*layers 0..6 x 3 x" 3 "${BF16[@]}"

# Job 6 waits behind job 5 while its directory disappears.
GONE="$SSD_ROOT/gone"
mkdir -p "$GONE"
"$CTL" submit --name busy "${JOB[@]}" >/dev/null
"$CTL" submit --name lost "${JOB[@]}" "${SHORT[@]}" --ssd-dir "$GONE" >/dev/null
rm -rf "$GONE"
check "a job whose tier directory is gone fails" wait_state 6 FAILED
"$CTL" status 6 >"$WORK/status6.txt" 2>&1
check "its error is the field's refusal" \
  grep -q "PERMISSION_DENIED: offload.ssd_dirs\[0\]" "$WORK/status6.txt"
"$CTL" submit --name next "${JOB[@]}" "${SHORT[@]}" --ssd-dir "$SSD" >/dev/null
check "the next spilled job succeeds" wait_state 7 SUCCEEDED

# fp32, 12 layers, W = 1: at 118 MiB even every layer's moments on the tier
# are not enough, so the masters of layers 0..9, which H2D sends, go there
# too; the engine reads them ahead of each fetch, and the checkpoint equals
# the RAM job's.
FP32=(--layers 12 --hidden 256 --heads 4 --seq-len 64 --vocab 512 --batch 4 --micro-batch 2
      --steps 6 --method stronghold --window 1)
tier_vs_ram "fp32 masters" 118MiB "ssd.master.fp32 *ssd .*layers 0..9 x" 8 "${FP32[@]}"
check "fp32: plan prints the counts" \
  grep -q "12 layers' optimizer state, 10 layers' fp32 masters" "$WORK/plan_8.txt"

# The same in bf16 at 104 MiB: every layer's masters and moments on the tier
# are not enough, so the working copies of layers 0..7 go there too (a
# fourth array of each layer's state, written back with it).
tier_vs_ram "bf16 working copies" 104MiB "ssd.weights.bf16 *ssd .*layers 0..7 x" 10 \
  "${FP32[@]}" --precision bf16
check "bf16: plan prints the counts" \
  grep -q "12 layers' optimizer state, 8 layers' working copies" "$WORK/plan_10.txt"

stop_daemon
finish
