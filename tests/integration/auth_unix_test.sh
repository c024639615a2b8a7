#!/usr/bin/env bash
# Identity on the unix socket, end to end (issue 15 item 7): the daemon
# knows each peer's uid from the kernel (SO_PEERCRED); a job records who
# submitted it; another user may read it but not cancel, fetch, trace or
# resume from it (PERMISSION_DENIED), may submit and cancel their own; a
# member of --admin_group may act on every job; the socket's mode and group
# decide who may connect at all; display names are escaped in list/status.
# Runs as root (as CI does): the other users are uids without a passwd
# entry, made with setpriv, and groups are plain numbers.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "FAIL: this test runs clients as other uids and needs root (CI runs as root)"
  exit 1
fi
SOCKET_GROUP=4243
ADMINS=4242
# 65534 uses the daemon through the socket's group; 65532 is also an admin;
# 65533 is in neither and may not connect.
as_user() { setpriv --reuid=65534 --regid=65534 --groups=$SOCKET_GROUP "$CTL" "$@"; }
as_admin() { setpriv --reuid=65532 --regid=65532 --groups=$SOCKET_GROUP,$ADMINS "$CTL" "$@"; }
as_outsider() { setpriv --reuid=65533 --regid=65533 --clear-groups "$CTL" "$@"; }
chmod 0755 "$SOCK_DIR"  # mktemp made it 0700: the socket's mode is the test
USER_DIR=$(mktemp -d "$SOCK_DIR/user.XXXXXX")
chmod 0777 "$USER_DIR"

start_daemon --socket_group=$SOCKET_GROUP --socket_mode=0660 --admin_group=$ADMINS
check "socket is 0660, group $SOCKET_GROUP" test "$(stat -c '%a %g' "$SOCK")" = "660 $SOCKET_GROUP"

# --- root's job; the other user reads it but may not touch it
"$CTL" submit --name roots --layers 2 --hidden 64 --heads 4 --seq-len 64 --steps 100000 \
  --checkpoint-every 5 --keep-last 2 >/dev/null
check "root's job runs" wait_state 1 RUNNING
has_checkpoint() {
  for _ in $(seq 1 300); do
    [ -n "$("$CTL" status 1 --output json | json_field checkpoints | tr -d '[]')" ] && return 0
    sleep 0.1
  done
  return 1
}
check "root's job has a checkpoint" has_checkpoint
check "root's job is owned by uid:0" \
  test "$("$CTL" status 1 --output json | json_field owner)" = "uid:0"
as_user list >"$WORK/list.txt" 2>&1
check "another user lists jobs" grep -q "jobs/1" "$WORK/list.txt"
as_user status 1 >"$WORK/status.txt" 2>&1
check "another user reads a job's status and its owner" grep -q "owner: *uid:0" "$WORK/status.txt"

denied() {  # denied WHAT CMD... : refused with PERMISSION_DENIED naming the job and the caller
  local what=$1; shift
  "$@" >"$WORK/denied.txt" 2>&1
  local rc=$?
  local refusal="uid:65534 may not .*jobs/1, which belongs to uid:0"
  if [ $rc -eq 1 ] && grep -q "PERMISSION_DENIED: \\(resume_from: \\)\\?$refusal" "$WORK/denied.txt"
  then
    ok "$what"
  else
    bad "$what (rc=$rc): $(cat "$WORK/denied.txt")"
  fi
}
denied "another user cannot cancel root's job" as_user cancel 1
check "root's job still runs" test "$("$CTL" status 1 --output json | json_field state)" = RUNNING
denied "another user cannot fetch root's checkpoint" as_user fetch 1 --out "$USER_DIR/out"
check "nothing was written for the refused fetch" test ! -e "$USER_DIR/out/model.safetensors"
denied "another user cannot get root's trace" as_user trace 1 --out "$USER_DIR/trace.json"
denied "another user cannot resume from root's job" as_user submit --resume-from 1 --steps 5

# --- their own job they may cancel; root may cancel theirs
as_user submit --name mine --layers 2 --hidden 64 --heads 4 --seq-len 64 --steps 5 \
  >"$WORK/submit2.txt" 2>&1
check "another user submits (jobs/2 queued behind root's)" grep -q "jobs/2" "$WORK/submit2.txt"
check "their job is owned by uid:65534" \
  test "$("$CTL" status 2 --output json | json_field owner)" = "uid:65534"
as_user cancel 2 >"$WORK/cancel2.txt" 2>&1
check "they cancel their own job" \
  test "$("$CTL" status 2 --output json | json_field state)" = CANCELLED
as_user submit --layers 2 --hidden 64 --heads 4 --seq-len 64 --steps 5 >/dev/null 2>&1
"$CTL" cancel 3 >/dev/null 2>&1
check "root cancels another user's job" \
  test "$("$CTL" status 3 --output json | json_field state)" = CANCELLED

# --- a member of the admin group cancels root's job
as_admin cancel 1 >"$WORK/cancel1.txt" 2>&1
check "a member of --admin_group cancels root's job" wait_state 1 CANCELLED

# --- the socket's mode keeps out who is not in its group
as_outsider node >/dev/null 2>"$WORK/outsider.txt"
check "a user outside the socket's group cannot connect, and is told why" \
  grep -q "you may not open the socket $SOCK (permission denied)" "$WORK/outsider.txt"

# --- another user's display name cannot drive the terminal of whoever lists it
as_user submit --name $'\e]0;owned\a\e[2J' --layers 2 --hidden 64 --heads 4 --seq-len 64 \
  --steps 1000000 >/dev/null 2>&1
"$CTL" list >"$WORK/list2.txt" 2>&1
"$CTL" status 4 >"$WORK/status4.txt" 2>&1
check "list prints no escape character" python3 - "$WORK/list2.txt" "$WORK/status4.txt" <<'PY'
import sys
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    assert b"\x1b" not in data and b"\x07" not in data, (path, data)
    assert rb"\x1b]0;owned\x07\x1b[2J" in data, (path, data)
PY
"$CTL" cancel 4 >/dev/null 2>&1

check "daemon still serving" "$CTL" node
check "daemon stops cleanly" stop_daemon
check "the socket is removed at exit" test ! -e "$SOCK"
finish
