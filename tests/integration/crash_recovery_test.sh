#!/usr/bin/env bash
# kill -9 of the daemon, at random moments during training and while a
# checkpoint is being written (found by watching for its hidden temporary
# directory: no test hook in the daemon). After each crash: every listed
# checkpoint is complete, the restarted daemon resumes the job from the
# newest one (step N+1 comes next), and at the end the job's final state is
# byte-identical to an uninterrupted run of the same spec. Last, a job the
# daemon keeps dying under is resumed at most --max_job_restarts times (the
# default, 2), then FAILED, and the daemon serves on.
set -uo pipefail
source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"
CHECK_CKPT="$RUNFILES/tests/integration/checkpoint_check.py"
# The rounds below kill the daemon under jobs/2 up to 8 times on purpose.
MANY_RESTARTS=(--max_job_restarts 100)

SPEC=(--layers 2 --hidden 32 --heads 4 --seq-len 32 --batch 4 --micro-batch 2
      --warmup-steps 3 --clip-norm 0.5 --seed 11 --steps 100 --checkpoint-every 1
      --keep-last 3 --name crash)

start_daemon "${MANY_RESTARTS[@]}"
"$CTL" submit "${SPEC[@]}" >/dev/null   # jobs/1: the uninterrupted reference
"$CTL" submit "${SPEC[@]}" >/dev/null   # jobs/2: the one we crash
check "reference job succeeds" wait_state 1 SUCCEEDED
DIR="$STATE/jobs/2/checkpoints"

# The newest step-* directory with a manifest: what a restart must resume.
newest() { ls "$DIR" 2>/dev/null | grep '^step-' | while read -r d; do
  [ -e "$DIR/$d/manifest.json" ] && echo "$d"; done | sort | tail -1; }

wait_step() {  # wait_step N: job 2 has finished step N
  for _ in $(seq 1 600); do
    [ "$("$CTL" status 2 --output json 2>/dev/null | json_field step)" -ge "$1" ] 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# Kills the daemon the moment a checkpoint write has begun. True when the
# write was still unfinished after the kill (its hidden directory remains).
kill_during_write() {
  python3 - "$PID" "$DIR" <<'PY'
import os, signal, sys, time
pid, d = int(sys.argv[1]), sys.argv[2]
deadline = time.time() + 20
while time.time() < deadline:
    try:
        if any(n.startswith(".tmp-") for n in os.listdir(d)):
            os.kill(pid, signal.SIGKILL)
            break
    except FileNotFoundError:
        pass
time.sleep(0.2)
sys.exit(0 if any(n.startswith(".tmp-") for n in os.listdir(d)) else 1)
PY
}

after_crash() {  # after_crash ROUND: checks, restarts, records what follows
  local round=$1 want complete
  want=$(newest)
  complete=$(ls "$DIR" | grep '^step-' | xargs)
  # shellcheck disable=SC2046
  check "round $round: every listed checkpoint is complete" \
    python3 "$CHECK_CKPT" $(ls "$DIR" | grep '^step-' | sed "s|^|$DIR/|")
  start_daemon "${MANY_RESTARTS[@]}"
  "$CTL" status 2 --output json >"$WORK/status$round.json"
  # The job is running again, so it may have written and pruned since: of
  # what it lists, the ones up to the crash must be those found complete.
  check "round $round: no partial checkpoint listed" python3 - "$WORK/status$round.json" \
    "$want" $complete <<'PY'
import json, re, sys
listed = json.load(open(sys.argv[1]))["checkpoints"]
want, complete = sys.argv[2], set(sys.argv[3:])
assert listed and all(re.fullmatch(r"step-\d{6,}", n) for n in listed), listed
assert all(n in complete for n in listed if n <= want), (listed, complete)
PY
  "$CTL" watch 2 --output json >"$WORK/round$round.json" 2>/dev/null &
  WATCH=$!
  wait_step $((10#${want#step-} + 2))
  python3 - "$WORK/round$round.json" "$want" >"$WORK/round$round.txt" <<'PY'
import json, sys
want = sys.argv[2]
messages, steps = [], []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "message" in e: messages.append(e["message"])
    if "metrics" in e: steps.append(int(e["metrics"]["step"]))
ok = any(m == "resuming from checkpoint %s (step %d)" % (want, int(want[5:])) for m in messages)
print("resumed" if ok else "not resumed: %s" % messages)
print("next", steps[0] if steps else None)
PY
  check "round $round: resumed from $want" grep -q "^resumed" "$WORK/round$round.txt"
  check "round $round: the next step is $((10#${want#step-} + 1))" \
    grep -q "^next $((10#${want#step-} + 1))$" "$WORK/round$round.txt"
}

# Round 1: during training, at a random moment.
check "job 2 starts" wait_step 2
sleep "0.$((RANDOM % 5))"
kill_daemon
after_crash 1

# Round 2: while a checkpoint is being written (retried if the write won
# the race against the kill).
mid_write=0
for try in 1 2 3 4 5; do
  kill_during_write; landed=$?
  wait "$PID" 2>/dev/null
  PID=""
  if [ "$landed" -eq 0 ]; then mid_write=1; break; fi
  echo "try $try: the write finished before the kill; again"
  start_daemon "${MANY_RESTARTS[@]}"
  wait_step "$(( $("$CTL" status 2 --output json | json_field step) + 1 ))"
done
check "a kill landed in the middle of a checkpoint write" test "$mid_write" -eq 1
leftover=$(ls -a "$DIR" | grep '^\.tmp-' | head -1)
echo "left behind by the kill: $leftover"
after_crash 2
check "round 2: the restart removed the partial checkpoint" \
  grep -q "jobs/2: removed 1 incomplete checkpoint" "$WORK/daemon.log"

# Round 3: during training again, if a restart under load has not let the
# job run to its end meanwhile.
if [ "$("$CTL" status 2 --output json | json_field step)" -le 90 ]; then
  sleep "0.$((RANDOM % 3))"
  kill_daemon
  kill "$WATCH" 2>/dev/null
  after_crash 3
else
  echo "round 3 skipped: the job is almost done"
fi

check "crashed job finishes" wait_state 2 SUCCEEDED
kill "$WATCH" 2>/dev/null
for f in model.safetensors optimizer.safetensors; do
  check "final $f byte-identical to the uninterrupted run" \
    cmp -s "$STATE/jobs/1/checkpoints/step-000100/$f" "$DIR/step-000100/$f"
done
l1=$("$CTL" status 1 --output json | json_field last_loss)
l2=$("$CTL" status 2 --output json | json_field last_loss)
check "final loss equal ($l1 = $l2)" test "$l1" = "$l2"
stop_daemon
check "daemon exits 0" test $? -eq 0

# A job the daemon keeps dying under (issue 15: one job must not crash-loop
# the daemon): the default --max_job_restarts 2 resumes it twice; the third
# stop fails it, and the daemon serves on.
start_daemon
"$CTL" submit --layers 1 --hidden 32 --heads 4 --seq-len 32 --batch 2 \
  --steps 100000 --name doomed >/dev/null   # jobs/3
for stop in 1 2 3; do
  check "stop $stop: jobs/3 runs" wait_state 3 RUNNING
  kill_daemon
  start_daemon
  stops=$("$CTL" status 3 --output json | json_field daemon_stops)
  check "stop $stop: counted ($stops)" test "$stops" = "$stop"
done
check "jobs/3 FAILED after the third stop" wait_state 3 FAILED 1
error=$("$CTL" status 3 --output json | json_field error)
check "its error says why ($error)" \
  test "$error" = "the daemon stopped 3 times while running this job"
check "the daemon serves: list" bash -c '"$0" list | grep -q "jobs/3.*FAILED"' "$CTL"
"$CTL" submit --layers 1 --hidden 32 --heads 4 --seq-len 32 --steps 2 >/dev/null
check "the daemon serves: a new job succeeds" wait_state 4 SUCCEEDED
stop_daemon
check "daemon exits 0 after it" test $? -eq 0
finish
