#!/bin/bash
# One job on two real strongholdd (separate processes, sockets and state
# directories) on loopback, host device: submit --wait to both ranks, a spec
# that differs between the ranks, a rank 0 daemon killed with SIGKILL while
# rank 1 waits for it, one rank's daemon killed (SIGKILL) or stopped
# (SIGSTOP) in the middle of training, and the job key kept out of every
# reply and log. tests/integration/distributed_train_test.sh checks what the
# ranks train.
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/two_daemons_lib.sh"
KEY="e2e-secret-key-$$"
MODEL=(--layers 1 --hidden 32 --heads 2 --seq-len 16 --vocab 256
       --micro-batch 1 --steps 2 --method stronghold)
TINY=("${MODEL[@]}" --batch 2)
dist() {  # dist WORLD RANK PORT [TIMEOUT]
  echo --world-size "$1" --rank "$2" --local-rank "$2" --master-addr 127.0.0.1 \
    --master-port "$3" --job-key "$KEY" --collective-timeout "${4:-30}"
}
b_state() { B status "$1" --output json 2>/dev/null | json_field state; }
wait_b_state() {  # wait_b_state JOB STATE SECONDS: rank 1's daemon's view
  local deadline=$(( $(date +%s) + $3 ))
  while [ "$(date +%s)" -le "$deadline" ]; do
    [ "$(b_state "$1")" = "$2" ] && return 0
    sleep 0.2
  done
  return 1
}
last_job() { "$@" list --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"][0]["name"])'; }

# --- submit --wait to both ranks: they meet and train
PORT=$(free_port)
A submit "${TINY[@]}" $(dist 2 0 "$PORT") --wait >"$WORK/a1.out" 2>&1 &
A_WAIT=$!
MASTER_ADDR=127.0.0.1 MASTER_PORT=$PORT WORLD_SIZE=2 RANK=1 LOCAL_RANK=1 \
  STRONGHOLD_JOB_KEY="$KEY" B submit "${TINY[@]}" --dist-from-env \
  --collective-timeout 30 --wait >"$WORK/b1.out" 2>&1
b_rc=$?
wait "$A_WAIT"; a_rc=$?
JA=$(last_job A); JB=$(last_job B)
sa=$(A status "$JA" --output json | json_field state)
sb=$(B status "$JB" --output json | json_field state)
check "both ranks end in the same state ($sa, $sb)" [ "$sa" = "$sb" ]
check "submit --wait exits as the job ended on both ($a_rc, $b_rc)" \
  [ "$a_rc" = "$b_rc" ]
check "the ranks met (rank 1's events)" \
  grep -q "all 2 ranks joined with the same spec" <(B watch "$JB" 2>&1)
check "the job succeeded on both ranks" [ "$sa" = "SUCCEEDED" ]
check "submit --wait exits 0 for a job that succeeded" [ "$a_rc" = 0 ]

# --- the key never leaves the daemons
check "status does not show the job key" \
  bash -c "! ( $CTL --daemon unix:$SOCK status $JA --output json; $CTL --daemon unix:$SOCK list --output json ) | grep -q -- '$KEY'"
redacted=$(A status "$JA" --output json | python3 -c \
  'import json,sys; print(json.load(sys.stdin)["spec"]["distributed"]["job_key"])')
check "status shows it redacted ($redacted)" [ "$redacted" = "<redacted>" ]
check "no daemon log holds the job key" \
  bash -c "! grep -q -- '$KEY' '$WORK/daemon.log' '$WORK/daemon-b.log'"

# --- a spec that differs: both ranks fail naming the field
PORT=$(free_port)
A submit "${TINY[@]}" --lr 1e-3 $(dist 2 0 "$PORT") --wait >"$WORK/a2.out" 2>&1 &
A_WAIT=$!
B submit "${TINY[@]}" --lr 2e-3 $(dist 2 1 "$PORT") --wait >"$WORK/b2.out" 2>&1
b_rc=$?
wait "$A_WAIT"; a_rc=$?
check "a mismatched spec fails rank 0 ($a_rc)" [ "$a_rc" != 0 ]
check "a mismatched spec fails rank 1 ($b_rc)" [ "$b_rc" != 0 ]
for f in a2 b2; do
  check "$f names the field" \
    grep -q "rank 1's training.lr differs from rank 0's" "$WORK/$f.out"
done

# --- PlanJob needs only the world size
check "plan --world-size 2 passes" quiet A plan "${TINY[@]}" --world-size 2
check "plan --world-size 4 refuses batch 2 naming both fields" \
  bash -c "$CTL --daemon unix:$SOCK plan ${TINY[*]} --world-size 4 2>&1 | grep -q 'distributed.world_size x training.micro_batch'"

# --- one rank's daemon killed (SIGKILL) or stopped (SIGSTOP) while the job
# trains: the other rank fails within the collective timeout + 5 s naming
# it, and its daemon serves on.
a_state() { A status "$1" --output json 2>/dev/null | json_field state; }
a_step() {
  A status "$1" --output json 2>/dev/null | python3 -c \
    'import json,sys; print(int(json.load(sys.stdin).get("step", 0)))'
}
restart_b() {
  kill -9 "$B_PID" 2>/dev/null; kill -CONT "$B_PID" 2>/dev/null
  wait "$B_PID" 2>/dev/null
  # A new state directory: the killed daemon's job would run again on
  # restart (crash recovery) and hold the worker until it fails to meet.
  start_daemon_b "$WORK/state-b-$1"
}
for how in KILL STOP; do
  PORT=$(free_port)
  LONGRUN=(--layers 1 --hidden 32 --heads 2 --seq-len 16 --vocab 256
           --micro-batch 1 --batch 2 --method stronghold --steps 20000)
  JA=$(A submit "${LONGRUN[@]}" $(dist 2 0 "$PORT" 10) --output json | json_field name)
  B submit "${LONGRUN[@]}" $(dist 2 1 "$PORT" 10) >/dev/null
  check "SIG$how: a new job on rank 0 ($JA)" [ -n "$JA" ]
  for _ in $(seq 1 300); do
    [ "$(a_step "$JA")" -ge 3 ] 2>/dev/null && break
    sleep 0.1
  done
  check "SIG$how: the 2-rank job trains (step $(a_step "$JA"))" [ "$(a_step "$JA")" -ge 3 ]
  kill -"$how" "$B_PID"
  start=$(date +%s%N)
  for _ in $(seq 1 250); do
    [ "$(a_state "$JA")" = FAILED ] && break
    sleep 0.1
  done
  took=$(python3 -c "print(round(($(date +%s%N) - $start) / 1e9, 1))")
  check "SIG$how of rank 1's daemon fails rank 0's job" [ "$(a_state "$JA")" = FAILED ]
  check "SIG$how: within the timeout (10 s) + 5 s (${took} s)" \
    python3 -c "import sys; sys.exit(0 if $took <= 15 else 1)"
  err=$(A status "$JA" --output json | json_field error)
  echo "SIG$how: rank 0's error: $err"
  check "SIG$how: naming rank 1" grep -q "rank 1" <<<"$err"
  check "SIG$how: rank 0's daemon serves on" quiet A node
  restart_b "$how"
done

# --- rank 0's daemon killed while rank 1 waits for a third rank: rank 1
# fails within the timeout + 5 s naming rank 0, and its daemon serves on.
PORT=$(free_port)
A submit "${MODEL[@]}" --batch 3 $(dist 3 0 "$PORT" 30) >/dev/null
B submit "${MODEL[@]}" --batch 3 $(dist 3 1 "$PORT" 30) >/dev/null
JB=$(last_job B)
sleep 2  # both have joined; rank 2 never comes
kill_daemon
start=$(date +%s)
check "rank 1 fails after rank 0's daemon died" wait_b_state "$JB" FAILED 40
took=$(( $(date +%s) - start ))
check "within the timeout + 5 s (${took} s)" [ "$took" -le 35 ]
err=$(B status "$JB" --output json | json_field error)
echo "rank 1's error: $err"
check "naming rank 0" grep -q "rank 0" <<<"$err"
check "rank 1's daemon serves on" quiet B node
check "and runs a one-rank job" quiet B submit "${TINY[@]}" --wait

finish
