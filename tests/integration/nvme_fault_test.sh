#!/usr/bin/env bash
# Faults of the NVMe tier through the daemon (issue 5): for an injected EIO
# on a read or a write, a silently torn write and ENOSPC (--ssd_fault_injection, the
# daemon's testing-only flag), a job whose Adam moments spill ends FAILED
# with an error naming the file, offset and errno (EIO), a CRC32C mismatch
# naming the file and offset (torn write, caught by the next read), or
# RESOURCE_EXHAUSTED with the bytes needed (ENOSPC); the daemon keeps
# answering; the checkpoint written before the fault is intact (checked by
# an independent reader, and fetched); and the next spilled job on the same
# daemon, which the fault spec no longer reaches, succeeds. A malformed spec
# stops the daemon at start naming the flag.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"
CHECK_CKPT="$RUNFILES/tests/integration/checkpoint_check.py"

# The job of ssd_tier_test: with a host budget of 117 MiB the moments of 7
# of its 8 layers (layers 0..6) live on the tier, and a checkpoint follows
# every step. Per spilled layer the tier sees 4 requests for a read or a
# write of its moments (m and v, each data + checksum trailer), so:
#   writes: 1-28 initial zeros, 29-56 step 1, 57-84 step 2, ...
#   reads:  1-28 step 1, 29-56 checkpoint 1, 57-84 step 2, ...
# A fault at request 60 or 61 therefore fires in step 2, after checkpoint
# step-000001 is complete.
JOB=(--layers 8 --hidden 256 --heads 4 --seq-len 64 --vocab 512 --batch 4 --micro-batch 2
     --method stronghold --window 2 --host-memory-budget 117MiB --checkpoint-every 1)

status_json() { "$CTL" status "$1" --output json 2>/dev/null; }

# run_case NAME SPEC PATTERN...: a daemon with --ssd_fault_injection=SPEC;
# job 1 must fail with an error matching every extended regex PATTERN.
run_case() {
  local name=$1 spec=$2
  shift 2
  STATE="$WORK/state-$name"
  local ssd="$SSD_ROOT/$name"
  mkdir -p "$ssd"
  start_daemon --ssd_fault_injection="$spec"
  check "$name: the daemon warns that faults are injected" \
    grep -q "TESTING ONLY: --ssd_fault_injection=$spec" "$WORK/daemon.log"

  "$CTL" submit --name "faulty-$name" "${JOB[@]}" --steps 3 --ssd-dir "$ssd" >/dev/null
  check "$name: the job ends FAILED" wait_state 1 FAILED 1200
  local error
  error=$(status_json 1 | json_field error)
  echo "$name: error: $error"
  local pattern
  for pattern in "$@"; do
    check "$name: the error matches /$pattern/" grep -Eq -- "$pattern" <<<"$error"
  done
  check "$name: the error names a tier file" grep -q "$ssd/stronghold-" <<<"$error"
  "$CTL" watch 1 >"$WORK/watch-$name.txt" 2>&1
  check "$name: the job's events say faults were injected" \
    grep -q "TESTING: faults injected into this job's NVMe tier" "$WORK/watch-$name.txt"

  check "$name: the daemon still answers list" "$CTL" list
  local checkpoints
  checkpoints=$(status_json 1 | python3 -c "import json,sys; print(' '.join(json.load(sys.stdin).get('checkpoints', [])))")
  check "$name: the job's checkpoints are exactly step-000001 (got '$checkpoints')" \
    test "$checkpoints" = "step-000001"
  check "$name: step-000001 verifies (independent reader)" \
    python3 "$CHECK_CKPT" "$STATE/jobs/1/checkpoints/step-000001"
  check "$name: no incomplete checkpoint became visible" \
    test "$(ls "$STATE/jobs/1/checkpoints")" = "step-000001"
  rm -rf "$WORK/fetch-$name"
  check "$name: step-000001 can be fetched" \
    "$CTL" fetch 1 --step 1 --out "$WORK/fetch-$name"
  check "$name: the fetched copy verifies" python3 "$CHECK_CKPT" "$WORK/fetch-$name"

  "$CTL" submit --name "next-$name" "${JOB[@]}" --steps 2 --ssd-dir "$ssd" >/dev/null
  check "$name: the next spilled job on the same daemon succeeds" wait_state 2 SUCCEEDED 1200
  check "$name: the tier's files are removed" test -z "$(ls -A "$ssd")"
  stop_daemon
  check "$name: the daemon stops cleanly" test $? -eq 0
}

# EIO on read 60: the trailer read of layer 0's moments in step 2.
run_case eio eio_read@60 \
  "^DATA_LOSS: reading extents layers\.[0-9]+\.exp_avg" \
  "read of [0-9]+ bytes at offset [0-9]+ of [^ ]*/stronghold-[^ ]* \(injected fault\) failed: Input/output error \(errno 5\)"

# Write 61: the data of a layer's exp_avg in step 2, half of it written and
# reported as done. The next read of that layer (checkpoint 2) finds it.
run_case torn torn_write@61 \
  "^DATA_LOSS: .*extent layers\.[0-9]+\.exp_avg" \
  "CRC32C mismatch in block [0-9]+ \(bytes \[[0-9]+, [0-9]+\), device offset [0-9]+ = offset [0-9]+ of [^ ]*/stronghold-[^ ]*\)" \
  "torn or corrupted write"

# Write 61 fails with ENOSPC.
run_case enospc enospc_write@61 \
  "^RESOURCE_EXHAUSTED: writing extents layers\.[0-9]+\.exp_avg" \
  "write of [0-9]+ bytes at offset [0-9]+ of [^ ]*/stronghold-[^ ]* \(injected fault\) failed: No space left on device \(errno 28\); it needs [0-9]+ bytes of space"

# Write 61 fails with EIO: sticky (what is on the device is unknown), the
# step fails with it.
run_case eio-write eio_write@61 \
  "^DATA_LOSS: writing extents layers\.[0-9]+\.exp_avg" \
  "write of [0-9]+ bytes at offset [0-9]+ of [^ ]*/stronghold-[^ ]* \(injected fault\) failed: Input/output error \(errno 5\)"

# A malformed spec: the daemon refuses to start and names the flag.
"$DAEMON" --socket "$SOCK" --state_dir "$WORK/state-bad" --metrics_listen= \
  --ssd_fault_injection=eio_read@zero >"$WORK/bad.txt" 2>&1
check "a malformed spec stops the daemon (exit 2)" test $? -eq 2
check "naming the flag and the entry" \
  grep -q '^strongholdd: --ssd_fault_injection: "eio_read@zero"' "$WORK/bad.txt"

finish
