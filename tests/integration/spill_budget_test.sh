#!/usr/bin/env bash
# Issue 19's last acceptance line, end to end: a sharded Hugging Face
# checkpoint larger than the job's host budget initialises (submit
# --init-from) a job whose optimizer state, gradients and fp32 masters spill
# to the NVMe tier, and the daemon's resident memory grows by no more than
# that budget while the job loads, trains and checkpoints.
#
# The daemon's budget on a host-device node (docs/storage.md, "What a job's
# budgets bound"): the job's host budget plus its device budget, since on
# the host device the device is host RAM: the device budget holds what a
# GPU would (the arena and LibTorch's compute temporaries), the host budget
# the host buffers (the planner charges the arena to it too, so the plan
# fits both). What the process holds before the job (code, LibTorch's
# runtime, initialised by a first small job: one-time, printed below) is
# the daemon's own, not a job's.
#
# Measured: VmHWM (the kernel's peak, reset to the idle RSS just before the
# job with clear_refs) minus the idle VmRSS, and VmRSS sampled every 50 ms
# (rss_sampler.py) for the same peak; the figures are printed. On main
# before the spilled gradients (issue 19) the plan did not fit.
set -uo pipefail
source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"
MAKE_MODEL="$RUNFILES/tests/integration/make_hf_gpt2.py"
SAMPLER="$RUNFILES/tests/integration/rss_sampler.py"

# A GPT2LMHeadModel of 48 layers at hidden 192: 21.5M parameters, 82 MiB of
# fp32 safetensors in 3 shards.
MODEL=(--layers 48 --hidden 192 --heads 4 --positions 64 --vocab 512)
HOST_MIB=48
DEVICE_MIB=16
# One micro-batch per step without clipping: each layer's gradient is
# consumed by its update as it lands (ExecutionPlan::ssd_grads_transient).
JOB=(--init-from big --batch 1 --micro-batch 1 --seq-len 32 --clip-norm 0
     --method stronghold --window 1 --steps 2 --checkpoint-every 2
     --host-memory-budget "${HOST_MIB}MiB" --gpu-memory-budget "${DEVICE_MIB}MiB"
     --ssd-dir "$SSD_ROOT")

start_daemon
python3 "$MAKE_MODEL" "$DATA_ROOT/big" "${MODEL[@]}" >"$WORK/model_bytes.txt"
CHECKPOINT_BYTES=$(cat "$WORK/model_bytes.txt")
BUDGET=$(((HOST_MIB + DEVICE_MIB) << 20))
check "the checkpoint ($CHECKPOINT_BYTES bytes) is larger than the job's budgets together ($BUDGET)" \
  test "$CHECKPOINT_BYTES" -gt "$BUDGET"
check "it is sharded" test "$(ls "$DATA_ROOT"/big/model-0000?-of-0000?.safetensors | wc -l)" -ge 2

"$CTL" plan "${JOB[@]}" >"$WORK/plan.txt" 2>&1
check "plan: it fits the host budget" grep -q "^fits: *yes" "$WORK/plan.txt"
check "plan: every layer's optimizer state and most fp32 masters are on the NVMe tier" \
  grep -Eq "^on the NVMe tier: *48 layers' optimizer state, [0-9]+ layers' fp32 masters" "$WORK/plan.txt"
check "plan: the spilled layers' gradients are consumed as they land" \
  grep -q "their gradients one layer at a time" "$WORK/plan.txt"
check "plan: one layer's gradient accumulator for them" \
  grep -Eq "^host.grads.spilled.fp32 +host +1.7 MiB" "$WORK/plan.txt"
check "plan: the moments and masters are on the ssd tier" \
  grep -Eq "^ssd.adam.exp_avg\+exp_avg_sq +ssd .*layers 0..47" "$WORK/plan.txt"

# LibTorch's one-time initialisation belongs to the daemon: a small job
# first, and the idle RSS after it.
rss() { awk "/^$1:/{print \$2}" "/proc/$PID/status"; }
FRESH_KB=$(rss VmRSS)
"$CTL" submit --name warm-up --layers 2 --hidden 32 --heads 4 --seq-len 16 \
  --vocab 256 --batch 1 --micro-batch 1 --steps 1 >/dev/null
check "the warm-up job succeeds" wait_state 1 SUCCEEDED 600
sleep 0.5
IDLE_KB=$(rss VmRSS)
echo 5 >"/proc/$PID/clear_refs"  # VmHWM := VmRSS
python3 "$SAMPLER" "$PID" "$WORK/rss.json" --interval 0.05 &
SAMPLER_PID=$!
"$CTL" submit --name spilled "${JOB[@]}" >"$WORK/submit.txt" 2>&1
check "the spilled job is accepted" grep -q "jobs/2" "$WORK/submit.txt"
check "the spilled job succeeds" wait_state 2 SUCCEEDED 1200
HWM_KB=$(rss VmHWM)
AFTER_KB=$(rss VmRSS)
kill -TERM "$SAMPLER_PID"
wait "$SAMPLER_PID"
PEAK_KB=$(python3 -c "import json; print(json.load(open('$WORK/rss.json'))['peak_rss_kb'])")
PLAN_KB=$(python3 -c "
import re
t = open('$WORK/plan.txt').read()
b = lambda k: int(re.search(r'^' + k + r' total: .*\((\d+) bytes\)', t, re.M).group(1))
print((b('host') + b('pinned') + b('device')) >> 10)")
echo "figures: checkpoint $((CHECKPOINT_BYTES >> 20)) MiB, host budget $HOST_MIB MiB + device budget $DEVICE_MIB MiB," \
  "plan host + device $((PLAN_KB >> 10)) MiB;" \
  "daemon RSS fresh $((FRESH_KB >> 10)) MiB, idle after the warm-up $((IDLE_KB >> 10)) MiB" \
  "(+$(((IDLE_KB - FRESH_KB) >> 10)) MiB LibTorch runtime);" \
  "during the job peak VmHWM +$(((HWM_KB - IDLE_KB) >> 10)) MiB," \
  "sampled VmRSS +$(((PEAK_KB - IDLE_KB) >> 10)) MiB; after it +$(((AFTER_KB - IDLE_KB) >> 10)) MiB"
check "the daemon's peak RSS (VmHWM) grew by at most the job's budgets" \
  test $(((HWM_KB - IDLE_KB) << 10)) -le "$BUDGET"
check "so did its sampled RSS" test $(((PEAK_KB - IDLE_KB) << 10)) -le "$BUDGET"
check "the job's state left with it (RSS within 8 MiB of idle)" \
  test $(((AFTER_KB - IDLE_KB) >> 10)) -le 8
check "the tier's files are removed" test -z "$(ls -A "$SSD_ROOT")"
finish
