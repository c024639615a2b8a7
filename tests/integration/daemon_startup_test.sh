#!/usr/bin/env bash
# Issue 15 items 3 and 10 with the real binaries: one daemon per state
# directory (a second one exits naming the first's pid and takes nothing
# from it), and --socket accepts the unix address forms strongholdctl
# --daemon accepts (unix:PATH, unix:///PATH, a plain path) and refuses the
# rest instead of creating a directory named after them.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"

# --- --socket=unix:///PATH: served at PATH, reached with the same form
cd "$WORK"
start_daemon_at() {  # start_daemon_at SOCKET_FLAG ADDRESS
  "$DAEMON" --socket "$1" --state_dir "$STATE" --metrics_listen= --optimizer_threads 1 \
    >>"$WORK/daemon.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 200); do
    "$CTL" --daemon "$2" node >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
check "--socket unix:///PATH serves" start_daemon_at "unix://$SOCK" "unix://$SOCK"
check "the socket is at PATH" test -S "$SOCK"
check "no directory named unix: is created" test ! -e "$WORK/unix:"
check "strongholdctl reaches it as a plain path" quiet "$CTL" --daemon "$SOCK" node

# --- a second daemon on the same state directory is refused, naming the pid
SOCK2="$SOCK_DIR/second.sock"
"$DAEMON" --socket "$SOCK2" --state_dir "$STATE" --metrics_listen= >"$WORK/second.txt" 2>&1
rc=$?
check "second daemon exits 2" test "$rc" -eq 2
check "second daemon names the first's pid" grep -q "in use by another strongholdd (pid $PID" \
  "$WORK/second.txt"
check "second daemon did not create its socket" test ! -e "$SOCK2"
check "the first daemon still serves" quiet "$CTL" node
"$CTL" submit --layers 1 --hidden 32 --heads 2 --seq-len 16 --steps 2 >/dev/null
check "and runs jobs" wait_state 1 SUCCEEDED

# --- kill -9 leaves the lock file; the kernel released the lock
kill_daemon
check "a daemon starts after kill -9 of the holder" start_daemon_at "unix:$SOCK" "unix:$SOCK"
check "the lock file holds the new pid" test "$(cat "$STATE/strongholdd.lock")" = "$PID"
stop_daemon

# --- what is not a path is refused before anything is created
for bad in "dns:localhost" "localhost:7070" "unix-abstract:sh" "unix:"; do
  "$DAEMON" --socket "$bad" --state_dir "$WORK/other" --metrics_listen= >"$WORK/bad.txt" 2>&1
  rc=$?
  if [ "$rc" -eq 2 ] && grep -q -- "--socket: " "$WORK/bad.txt" && [ ! -e "$WORK/other" ] &&
    [ ! -e "$WORK/${bad%%:*}:" ]; then
    ok "--socket $bad refused (exit 2, nothing created)"
  else
    bad "--socket $bad: rc=$rc $(cat "$WORK/bad.txt")"
  fi
done

finish
