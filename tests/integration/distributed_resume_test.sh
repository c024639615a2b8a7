#!/bin/bash
# Issue 17's stop and failure acceptance through two real daemons on
# loopback, against an uninterrupted 2-rank run of the same fp32 spec:
#  - kill -9 of rank 1's daemon mid-run fails the job on rank 0, the
#    restarted daemon fails (does not re-run) its rank, and both ranks
#    resubmitted with --resume-from their newest common checkpoint continue
#    exactly: the losses of the remaining steps and the final model and
#    optimizer files equal the uninterrupted run's bit for bit;
#  - SIGTERM of rank 1's daemon mid-run stops both ranks at one step, each
#    checkpoints it, rank 0's job is queued again, and with the daemon back
#    both ranks resume and end equal to the uninterrupted run bit for bit.
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/two_daemons_lib.sh"
# A fresh secret per job (never on a printed command line), as
# docs/distributed.md asks.
new_key() { STRONGHOLD_JOB_KEY="resume-$$-$RANDOM$RANDOM"; export STRONGHOLD_JOB_KEY; }
STEPS=80  # long enough that the kill and the SIGTERM land mid-run on a fast CPU
MODEL=(--layers 2 --hidden 64 --heads 4 --seq-len 64 --vocab 256 --batch 4
       --micro-batch 1 --method stronghold --window 1 --steps "$STEPS"
       --checkpoint-every 4 --keep-last 0 --lr 3e-3 --precision fp32
       --seed 7 --clip-norm 1.0 --log-every 1)
dist() {  # dist RANK PORT: the distributed flags, the key from the environment
  echo --world-size 2 --rank "$1" --local-rank "$1" --master-addr 127.0.0.1 \
    --master-port "$2" --collective-timeout 10 --dist-from-env
}
# dist_env RANK PORT CMD...: CMD with the variables --dist-from-env reads.
dist_env() {
  local rank=$1 port=$2; shift 2
  WORLD_SIZE=2 RANK=$rank LOCAL_RANK=$rank MASTER_ADDR=127.0.0.1 \
    MASTER_PORT=$port "$@"
}
job_name() { json_field name; }
field() {  # field WHO JOB FIELD: a field of the job's status
  "$1" status "$2" --output json 2>/dev/null | json_field "$3"
}
checkpoints() {  # checkpoints WHO JOB: one per line
  "$1" status "$2" --output json 2>/dev/null | python3 -c \
    'import json,sys; [print(c) for c in json.load(sys.stdin).get("checkpoints", [])]'
}
wait_field() {  # wait_field WHO JOB STATE SECONDS
  local deadline=$(( $(date +%s) + $4 ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    [ "$(field "$1" "$2" state)" = "$3" ] && return 0
    sleep 0.2
  done
  return 1
}
# Step -> loss (repr of the double) of the metrics events of watch --output json.
losses() {
  python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if "metrics" in e:
        print(e["metrics"]["step"], repr(e["metrics"]["loss"]))' | sort -n -u
}
# submit_ranks PORT [FLAGS...]: rank 0 on A, rank 1 on B; sets J0, J1.
submit_ranks() {
  local port=$1; shift
  J0=$(dist_env 0 "$port" A submit "${MODEL[@]}" $(dist 0 "$port") "$@" --output json | job_name)
  J1=$(dist_env 1 "$port" B submit "${MODEL[@]}" $(dist 1 "$port") "$@" --output json | job_name)
}
restart_b() {  # the same state directory: what an operator does
  wait "$B_PID" 2>/dev/null
  start_daemon_b "$B_STATE"
}
# wait_checkpoint WHO JOB NAME: until the job lists that checkpoint.
wait_checkpoint() {
  for _ in $(seq 1 600); do
    checkpoints "$1" "$2" | grep -x "$3" >/dev/null && return 0
    sleep 0.05
  done
  return 1
}
same_files() {  # same_files DIR_A DIR_B: model and optimizer bit for bit
  cmp -s "$1/model.safetensors" "$2/model.safetensors" &&
    cmp -s "$1/optimizer.safetensors" "$2/optimizer.safetensors"
}
# final_equal WHAT JOB0 JOB1: both ranks' final checkpoints equal the
# uninterrupted run's.
final_equal() {
  A fetch "$2" --out "$WORK/$1-r0" >/dev/null
  B fetch "$3" --out "$WORK/$1-r1" >/dev/null
  check "$1: rank 0's final checkpoint equals the uninterrupted run's" \
    same_files "$WORK/ref-r0" "$WORK/$1-r0"
  check "$1: rank 1's too" same_files "$WORK/ref-r0" "$WORK/$1-r1"
}

# --- the uninterrupted 2-rank run
new_key
submit_ranks "$(free_port)"
A watch "$J0" --output json | losses >"$WORK/ref.txt"
B watch "$J1" --output json >/dev/null
check "the uninterrupted run succeeds on rank 0" [ "$(field A "$J0" state)" = SUCCEEDED ]
check "and on rank 1" [ "$(field B "$J1" state)" = SUCCEEDED ]
check "$STEPS steps of losses" [ "$(wc -l <"$WORK/ref.txt")" = "$STEPS" ]
A fetch "$J0" --out "$WORK/ref-r0" >/dev/null
B fetch "$J1" --out "$WORK/ref-r1" >/dev/null
check "rank 1's daemon holds the same final checkpoint as rank 0's" \
  same_files "$WORK/ref-r0" "$WORK/ref-r1"
REF=$J0

# --- kill -9 of rank 1's daemon mid-run, then resume on both ranks
new_key
submit_ranks "$(free_port)"
K0=$J0 K1=$J1
check "kill: a checkpoint at step 8 on rank 1" wait_checkpoint B "$K1" step-000008
kill -9 "$B_PID"
killed_at=$(date +%s%N)
check "kill: rank 0's job fails" wait_field A "$K0" FAILED 30
took=$(python3 -c "print(round(($(date +%s%N) - $killed_at) / 1e9, 1))")
check "kill: within the timeout (10 s) + 5 s (${took} s)" \
  python3 -c "import sys; sys.exit(0 if $took <= 15 else 1)"
check "kill: rank 0 stopped before the last step ($(field A "$K0" step))" \
  [ "$(field A "$K0" step)" -lt "$STEPS" ]
check "kill: rank 0's daemon serves on" quiet A node
restart_b
check "kill: the restarted daemon fails its rank rather than running it alone" \
  wait_field B "$K1" FAILED 10
echo "kill: rank 1's error: $(field B "$K1" error)"
check "kill: naming --resume-from" grep -q -- "--resume-from" <<<"$(field B "$K1" error)"
# The newest checkpoint both ranks finished (a kill may land between them).
common=$(comm -12 <(checkpoints A "$K0" | sort) <(checkpoints B "$K1" | sort) | tail -1)
echo "kill: resuming from $common"
check "kill: a common checkpoint ($common)" [ -n "$common" ]
# Each rank resumes from its own daemon's copy of that checkpoint.
PORT=$(free_port)
new_key
J0=$(dist_env 0 "$PORT" A submit "${MODEL[@]}" $(dist 0 "$PORT") --resume-from "$K0@$common" --output json | job_name)
J1=$(dist_env 1 "$PORT" B submit "${MODEL[@]}" $(dist 1 "$PORT") --resume-from "$K1@$common" --output json | job_name)
A watch "$J0" --output json | losses >"$WORK/kill-resumed.txt"
B watch "$J1" --output json >/dev/null
check "kill: the resumed job succeeds on rank 0" [ "$(field A "$J0" state)" = SUCCEEDED ]
check "kill: and on rank 1" [ "$(field B "$J1" state)" = SUCCEEDED ]
from_step=$((10#${common#step-}))
tail -n +$((from_step + 1)) "$WORK/ref.txt" >"$WORK/ref-tail.txt"
check "kill: the resumed losses of steps $((from_step + 1))-$STEPS equal the uninterrupted run's bit for bit" \
  cmp -s "$WORK/ref-tail.txt" "$WORK/kill-resumed.txt"
final_equal kill "$J0" "$J1"

# --- SIGTERM of rank 1's daemon mid-run: a common stop step, and back
new_key
PORT=$(free_port)
submit_ranks "$PORT"
T0=$J0 T1=$J1
A watch "$T0" --output json >"$WORK/term-watch.json" &
WATCH=$!
check "term: a checkpoint at step 4 on rank 1" wait_checkpoint B "$T1" step-000004
kill -TERM "$B_PID"
wait "$B_PID"; term_rc=$?
check "term: rank 1's daemon exits cleanly ($term_rc)" [ "$term_rc" = 0 ]
# Rank 1's stop step, read from its state directory while its daemon is down.
b_ckpt=$(ls "$B_STATE/jobs/${T1#jobs/}/checkpoints" | grep '^step-' | tail -1)
echo "term: rank 1 stopped at $b_ckpt"
requeued() { grep -q "shutting down.*runs again when every rank is back" "$WORK/term-watch.json"; }
for _ in $(seq 1 150); do requeued && break; sleep 0.2; done
check "term: rank 0's job is queued again to meet rank 1" requeued
a_ckpt=$(checkpoints A "$T0" | tail -1)
check "term: rank 0 checkpointed the same step ($a_ckpt = $b_ckpt)" \
  [ -n "$b_ckpt" ] && [ "$a_ckpt" = "$b_ckpt" ]
check "term: before the last step" [ "$((10#${b_ckpt#step-}))" -lt "$STEPS" ]
check "term: rank 0's job is not failed" [ "$(field A "$T0" state)" != FAILED ]
restart_b
check "term: both ranks resume and succeed (rank 0)" wait_field A "$T0" SUCCEEDED 120
check "term: (rank 1)" wait_field B "$T1" SUCCEEDED 30
wait "$WATCH"
losses <"$WORK/term-watch.json" >"$WORK/term.txt"
check "term: rank 0's losses of all $STEPS steps equal the uninterrupted run's bit for bit" \
  cmp -s "$WORK/ref.txt" "$WORK/term.txt"
final_equal term "$T0" "$T1"

finish
