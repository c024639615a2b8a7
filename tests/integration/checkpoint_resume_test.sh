#!/usr/bin/env bash
# End to end, checkpoints and resume through the daemon:
#  - exactness: 16 steps straight vs the same job's step-8 checkpoint resumed
#    (submit --resume-from) after a daemon restart: bit-identical losses and
#    byte-identical final checkpoints, RESIDENT, STRONGHOLD, and STRONGHOLD
#    with a host budget that spills Adam moments to the NVMe tier;
#  - cancel --checkpoint, then resume with more steps;
#  - damaged or mismatched checkpoints refused with the file named;
#  - fetch of a whole checkpoint, pinned and resumable, checked by
#    independent readers.
set -uo pipefail
source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"
CHECK_CKPT="$RUNFILES/tests/integration/checkpoint_check.py"
CHECK_ST="$RUNFILES/tests/core/safetensors_check.py"

# Small enough to be quick on 2 cores; warm-up, clipping and 2 micro-batches
# so schedule position, clipping and accumulation all matter.
MODEL=(--layers 2 --hidden 32 --heads 4 --seq-len 32 --batch 4 --micro-batch 2
       --warmup-steps 3 --clip-norm 0.5 --seed 7)

job_id() { json_field name | sed 's|jobs/||'; }

# Step -> loss (repr of the double) of the metrics events of a watch --output json.
losses() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "metrics" in e:
        print(e["metrics"]["step"], repr(e["metrics"]["loss"]))
PY
}

flip() {  # flip FILE OFFSET: xor one byte with 0x01
  python3 - "$1" "$2" <<'PY'
import sys
path, at = sys.argv[1], int(sys.argv[2])
data = bytearray(open(path, "rb").read())
data[at] ^= 1
open(path, "wb").write(bytes(data))
PY
}

start_daemon

# The spilled case needs layers big enough that the tier's staging slots
# cost less than the moments they replace: 24 MiB of host memory puts the
# moments of 5 of these 6 layers on the tier (26 MiB would hold everything;
# the staging, with one layer's for checkpoints, leaves no budget for 4).
SPILLED=(--layers 6 --hidden 128 --heads 4 --seq-len 32 --batch 4 --micro-batch 2
         --warmup-steps 3 --clip-norm 0.5 --seed 7 --method stronghold --window 1
         --host-memory-budget 24MiB --ssd-dir "$SSD_ROOT")
"$CTL" plan "${SPILLED[@]}" >"$WORK/plan-spilled.txt" 2>&1
check "spilled: the plan puts layers 0..4's moments on the ssd tier" \
  grep -q "ssd.adam.exp_avg+exp_avg_sq .*layers 0..4" "$WORK/plan-spilled.txt"

job_args() {  # job_args METHOD: the spec flags of each exactness case
  case $1 in
    resident) echo "${MODEL[@]}" --method resident ;;
    stronghold) echo "${MODEL[@]}" --method stronghold --window 1 ;;
    spilled) echo "${SPILLED[@]}" ;;
  esac
}

# --- exactness: three jobs trained straight, 16 steps, checkpoints at 8 and 16
declare -A straight
for method in resident stronghold spilled; do
  # shellcheck disable=SC2207  # no spaces in these flags
  args=($(job_args "$method"))
  id=$("$CTL" submit "${args[@]}" --steps 16 \
       --checkpoint-every 8 --name "exact-$method" --output json | job_id)
  straight[$method]=$id
  "$CTL" watch "$id" --output json >"$WORK/straight-$method.json"
  check "$method: 16 steps straight succeed" wait_state "$id" SUCCEEDED 1
done

# The spilled job's steps read its moments from the tier.
nvme_read() {
  python3 - "$1" <<'PY'
import json, sys
print(sum(int(json.loads(l).get("metrics", {}).get("nvme_read_bytes", 0)) for l in open(sys.argv[1])))
PY
}
check "spilled: its steps read from the NVMe tier" test "$(nvme_read "$WORK/straight-spilled.json")" -gt 0
check "stronghold in RAM reads nothing from it" test "$(nvme_read "$WORK/straight-stronghold.json")" -eq 0

stop_daemon
check "daemon exits 0 on SIGTERM" test $? -eq 0
start_daemon

for method in resident stronghold spilled; do
  s=${straight[$method]}
  id=$("$CTL" submit --resume-from "$s@8" --output json | job_id)
  "$CTL" watch "$id" --output json >"$WORK/resumed-$method.json"
  check "$method: resumed job succeeds" wait_state "$id" SUCCEEDED 1
  "$CTL" status "$id" --output json >"$WORK/resumed-$method-status.json"
  check "$method: resume_from pinned to jobs/$s@step-000008" python3 - \
    "$WORK/resumed-$method-status.json" "jobs/$s@step-000008" <<'PY'
import json, sys
job = json.load(open(sys.argv[1]))
assert job["spec"]["resume_from"] == sys.argv[2], job["spec"]
assert job["spec"]["offload"]["method"] in ("RESIDENT", "STRONGHOLD")
PY
  losses "$WORK/straight-$method.json" | awk '$1 > 8' >"$WORK/want-$method.txt"
  losses "$WORK/resumed-$method.json" >"$WORK/got-$method.txt"
  check "$method: steps 9..16 resumed, losses bit-identical" \
    diff "$WORK/want-$method.txt" "$WORK/got-$method.txt"
  check "$method: first step after the resume is 9" \
    test "$(head -1 "$WORK/got-$method.txt" | cut -d' ' -f1)" = 9
  [ "$method" = spilled ] && check "spilled: the resumed steps read from the NVMe tier" \
    test "$(nvme_read "$WORK/resumed-$method.json")" -gt 0
  for f in model.safetensors optimizer.safetensors; do
    check "$method: final $f byte-identical" cmp -s \
      "$STATE/jobs/$s/checkpoints/step-000016/$f" "$STATE/jobs/$id/checkpoints/step-000016/$f"
  done
done
RES=${straight[resident]}
CKPT="$STATE/jobs/$RES/checkpoints/step-000008"
check "checkpoints verify independently" python3 "$CHECK_CKPT" "$CKPT" \
  "$STATE/jobs/$RES/checkpoints/step-000016"

# --- cancel --checkpoint, then continue with more steps
long=$("$CTL" submit "${MODEL[@]}" --steps 100000 --name long --output json | job_id)
check "long job starts" wait_state "$long" RUNNING
for _ in $(seq 1 300); do
  [ "$("$CTL" status "$long" --output json | json_field step)" -ge 2 ] && break
  sleep 0.1
done
"$CTL" cancel "$long" --checkpoint >"$WORK/cancel.txt" 2>&1
check "cancel --checkpoint -> CANCELLED with a checkpoint" \
  grep -q "CANCELLED, checkpoint step-" "$WORK/cancel.txt"
k=$("$CTL" status "$long" --output json | python3 -c \
  "import json,sys; print(int(json.load(sys.stdin)['checkpoints'][-1][5:]))")
check "its checkpoint is complete" python3 "$CHECK_CKPT" \
  "$STATE/jobs/$long/checkpoints/$(printf step-%06d "$k")"
more=$("$CTL" submit --resume-from "$long" --steps $((k + 3)) --output json | job_id)
check "resumed with --steps $((k + 3)) succeeds" wait_state "$more" SUCCEEDED
"$CTL" watch "$more" --output json >"$WORK/more.json"
check "it trained steps $((k + 1))..$((k + 3))" \
  test "$(losses "$WORK/more.json" | cut -d' ' -f1 | xargs)" = "$((k + 1)) $((k + 2)) $((k + 3))"

# --- bad checkpoints and bad requests: refused, with the file named
cp -a "$CKPT" "$WORK/pristine"
restore() { rm -rf "$CKPT"; cp -a "$WORK/pristine" "$CKPT"; }

refused() {  # refused WHAT CODE FILE: submit or the job must fail naming FILE
  local what=$1 code=$2 file=$3 out id
  out=$("$CTL" submit --resume-from "$RES@8" --output json 2>&1)
  if id=$(echo "$out" | job_id 2>/dev/null) && [ -n "$id" ]; then
    wait_state "$id" FAILED >/dev/null
    out=$("$CTL" status "$id" --output json | json_field error)
  fi
  if echo "$out" | grep -q "$code" && echo "$out" | grep -q "$file"; then
    ok "$what -> $code naming $file"
  else
    bad "$what: expected $code naming $file, got: $out"
  fi
  restore
}
for f in model.safetensors optimizer.safetensors job.json manifest.json; do
  size=$(stat -c %s "$CKPT/$f")
  flip "$CKPT/$f" $((size / 2))
  refused "one flipped byte in $f" DATA_LOSS "$f"
done
flip "$CKPT/model.safetensors" 3
refused "a flipped header-size byte" DATA_LOSS model.safetensors
truncate -s -4 "$CKPT/optimizer.safetensors"
refused "truncated optimizer.safetensors" DATA_LOSS optimizer.safetensors
rm "$CKPT/model.safetensors"
refused "missing model.safetensors" DATA_LOSS model.safetensors

"$CTL" submit --resume-from "$RES@8" --layers 3 >/dev/null 2>"$WORK/err.txt"
check "another model shape -> INVALID_ARGUMENT naming manifest.json" \
  grep -q "INVALID_ARGUMENT: .*manifest.json.*not the job's" "$WORK/err.txt"
"$CTL" submit --resume-from "$RES@8" --steps 8 >/dev/null 2>"$WORK/err.txt"
check "no steps left -> INVALID_ARGUMENT naming training.steps" \
  grep -q "INVALID_ARGUMENT: training.steps" "$WORK/err.txt"
"$CTL" submit --resume-from "$RES@5" >/dev/null 2>"$WORK/err.txt"
check "unknown checkpoint -> NOT_FOUND listing the others" \
  grep -q "NOT_FOUND: .*step-000005 (it has step-000008, step-000016)" "$WORK/err.txt"
"$CTL" submit --resume-from 999 >/dev/null 2>"$WORK/err.txt"
check "unknown job -> NOT_FOUND" grep -q "NOT_FOUND: resume_from: job jobs/999" "$WORK/err.txt"
"$CTL" submit --resume-from "jobs/x@y" >/dev/null 2>"$WORK/err.txt"
check "malformed resume_from -> INVALID_ARGUMENT" grep -q "INVALID_ARGUMENT: resume_from" "$WORK/err.txt"

# --- fetch: a whole checkpoint, checked by independent readers
"$CTL" fetch "$RES" --step 8 --out "$WORK/f8" >"$WORK/fetch.txt" 2>&1
check "fetch --step 8 exits 0" test $? -eq 0
for f in model.safetensors optimizer.safetensors job.json manifest.json; do
  check "fetched $f equals the daemon's" cmp -s "$CKPT/$f" "$WORK/f8/$f"
done
check "fetched copy is a complete checkpoint" python3 "$CHECK_CKPT" "$WORK/f8"
check "fetched model.safetensors reads back (independent reader)" \
  python3 "$CHECK_ST" "$WORK/f8/model.safetensors"
check "fetched optimizer.safetensors reads back (independent reader)" \
  python3 "$CHECK_ST" "$WORK/f8/optimizer.safetensors"
check "no pin left after a complete fetch" test ! -e "$WORK/f8/.fetch"

# An interrupted fetch of step 8 (pinned, half a file) continues step 8,
# although the job's newest checkpoint is step 16.
mkdir -p "$WORK/f2"
echo "jobs/$RES step-000008" >"$WORK/f2/.fetch"
head -c 1000 "$CKPT/model.safetensors" >"$WORK/f2/model.safetensors.part"
"$CTL" fetch "$RES" --out "$WORK/f2" >"$WORK/fetch2.txt" 2>&1
check "interrupted fetch continues the pinned checkpoint" \
  grep -q "continuing the fetch of step-000008" "$WORK/fetch2.txt"
check "and the partial file" grep -q "resuming .*model.safetensors.part from 1000 bytes" "$WORK/fetch2.txt"
check "resumed fetch is step 8, complete" cmp -s "$CKPT/model.safetensors" "$WORK/f2/model.safetensors"
"$CTL" fetch "$RES" --out "$WORK/f16" >/dev/null 2>&1
check "fetch without --step takes the newest" \
  cmp -s "$STATE/jobs/$RES/checkpoints/step-000016/manifest.json" "$WORK/f16/manifest.json"

stop_daemon
check "daemon exits 0" test $? -eq 0
finish
