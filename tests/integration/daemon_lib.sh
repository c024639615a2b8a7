# Shared by the end-to-end tests: a real strongholdd on a private unix socket
# and state directory, driven by the real strongholdctl. Source it; it sets
# DAEMON, CTL, WORK, STATE, DATA_ROOT, SSD_ROOT, STRONGHOLD_DAEMON and a
# cleanup trap.
#   start_daemon [FLAG...]  starts it (with extra daemon flags; no node profile is
#                     measured unless --node_profile=true) and waits until it answers;
#                     token files go in $DATA_ROOT, tier directories in $SSD_ROOT
#                     (--data_root, --ssd_root: the daemon uses no other paths)
#   stop_daemon       SIGTERM; returns the daemon's exit code
#   kill_daemon       SIGKILL (a crash); no clean-up happens
#   wait_state JOB STATE [tries]   polls `status` every 0.1 s
#   json_field FIELD < json
#   ok/bad/check      PASS/FAIL lines and counters; finish prints the tally
#   quiet CMD...      CMD's exit code, its stdout dropped

RUNFILES="${TEST_SRCDIR:-$PWD/..}/stronghold"
DAEMON="$RUNFILES/server/strongholdd"
CTL="$RUNFILES/client/strongholdctl"
WORK=$(mktemp -d "${TEST_TMPDIR:-/tmp}/e2e.XXXXXX")
# Unix socket paths are limited to 107 bytes; TEST_TMPDIR can be longer.
SOCK_DIR=$(mktemp -d /tmp/sh-e2e.XXXXXX)
SOCK="$SOCK_DIR/d.sock"
STATE="$WORK/state"
DATA_ROOT="$WORK/data"
SSD_ROOT="$WORK/ssd"
export STRONGHOLD_DAEMON="unix:$SOCK"
PID=""
passed=0
failed=0

ok() { echo "PASS: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
quiet() { "$@" >/dev/null; }  # check "what" quiet CMD...: the exit code without the output

start_daemon() {
  mkdir -p "$DATA_ROOT" "$SSD_ROOT"
  # No metrics port: tests run beside each other and beside real daemons.
  "$DAEMON" --socket "$SOCK" --state_dir "$STATE" --metrics_listen= \
    --optimizer_threads 1 --node_profile=false --data_root "$DATA_ROOT" \
    --ssd_root "$SSD_ROOT" \
    "$@" >>"$WORK/daemon.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 200); do
    "$CTL" node >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "daemon did not come up:"; cat "$WORK/daemon.log"; exit 1
}

stop_daemon() {
  kill -TERM "$PID"
  local rc
  wait "$PID"; rc=$?
  PID=""
  return $rc
}

kill_daemon() {
  kill -KILL "$PID" 2>/dev/null
  wait "$PID" 2>/dev/null
  PID=""
}

cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$SOCK_DIR"; }
trap cleanup EXIT

json_field() {  # json_field FIELD < json
  python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', ''))"
}

wait_state() {  # wait_state JOB STATE [tries]
  for _ in $(seq 1 "${3:-600}"); do
    [ "$("$CTL" status "$1" --output json 2>/dev/null | json_field state)" = "$2" ] && return 0
    sleep 0.1
  done
  return 1
}

finish() {
  echo "$passed passed, $failed failed"
  if [ "$failed" -ne 0 ]; then echo "--- daemon log"; tail -50 "$WORK/daemon.log"; fi
  [ "$failed" -eq 0 ]
}
