#!/usr/bin/env bash
# Confined paths against the real binaries (issue 15 item 2): the daemon
# opens a job's token file only inside --data_root and its tier directories
# only inside --ssd_root. `submit --data /etc/shadow` (or any path outside,
# a symlink out, a missing file) is refused with one PERMISSION_DENIED
# naming data.source and the root, identical for every such path, with
# nothing of the file (no token value, no size); relative paths are
# relative to the root, not to the daemon's working directory; `--ssd-dir
# /dev/shm` is refused. After kill -9 of a daemon whose job had an NVMe
# tier, the next start removes the job's tier directory. A token file
# truncated under a running job fails that job (no SIGBUS), and the daemon
# keeps serving.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"

# A token file of `count` ids below 200 (python3: no other tool needed).
tokens() {  # tokens PATH COUNT
  python3 -c "import sys; n=int(sys.argv[2]); open(sys.argv[1],'wb').write(bytes(
    b for i in range(n) for b in ((i * 7) % 200, 0)))" "$1" "$2"
}
mkdir -p "$DATA_ROOT" "$WORK/cwd"
tokens "$DATA_ROOT/tokens.u16" 4096
# Outside the root: a file whose first id (31337) and size (77778 bytes)
# the old messages printed.
python3 -c "import sys; open(sys.argv[1], 'wb').write(
  (31337).to_bytes(2, 'little') + bytes(77776))" "$WORK/outside.u16"
ln -s "$WORK/outside.u16" "$DATA_ROOT/escape.u16"
ln -s ../outside.u16 "$DATA_ROOT/escape_relative.u16"
tokens "$WORK/cwd/only_in_cwd.u16" 4096
cd "$WORK/cwd"  # the daemon's working directory, which must not matter
start_daemon

TINY=(--layers 2 --hidden 64 --heads 4 --seq-len 64 --batch 4 --vocab 256)

# --- token files outside the data root: one answer, nothing of the file
refusal() {  # refusal VERB FLAGS...: the stderr of a refused plan/submit
  "$CTL" "$@" >/dev/null 2>"$WORK/refusal.txt" && echo "ACCEPTED"
  cat "$WORK/refusal.txt"
}
has() { grep -qF -- "$2" <<<"$1"; }      # has TEXT NEEDLE
lacks() { ! grep -qF -- "$2" <<<"$1"; }  # lacks TEXT NEEDLE
# A number as a whole word: the refusal names the data root, whose path
# (a Bazel sandbox's hash) may hold the same digits inside a longer word.
lacks_number() { ! grep -qwF -- "$2" <<<"$1"; }
shadow=$(refusal submit "${TINY[@]}" --steps 2 --data /etc/shadow)
echo "refusal: $shadow"
check "/etc/shadow -> PERMISSION_DENIED naming data.source" \
  has "$shadow" "PERMISSION_DENIED: data.source"
check "the refusal names the data root" has "$shadow" "$DATA_ROOT"
if [ -r /etc/shadow ]; then
  first=$(python3 -c "print(int.from_bytes(open('/etc/shadow','rb').read(2), 'little'))")
  size=$(stat -c %s /etc/shadow)
  check "nothing of /etc/shadow: not its first token ($first)" lacks_number "$shadow" "$first"
  check "nothing of /etc/shadow: not its size ($size)" lacks_number "$shadow" "$size"
fi
check "nothing of /etc/shadow: not its name" lacks "$shadow" shadow
for source in "$WORK/outside.u16" /nonexistent/tokens.u16 escape.u16 escape_relative.u16 \
              ../outside.u16 "$DATA_ROOT/../outside.u16" only_in_cwd.u16 \
              "/proc/self/root$WORK/outside.u16"; do
  check "--data $source: the same refusal, byte for byte" \
    test "$(refusal submit "${TINY[@]}" --steps 2 --data "$source")" = "$shadow"
done
outside=$(refusal submit "${TINY[@]}" --steps 2 --data "$WORK/outside.u16")
check "nothing of the file outside: not its first token" lacks_number "$outside" 31337
check "nothing of the file outside: not its size" lacks_number "$outside" 77778
check "plan refuses it too" \
  has "$(refusal plan "${TINY[@]}" --data /etc/shadow)" "PERMISSION_DENIED: data.source"

# --- inside the root, relative to it: trains
"$CTL" submit --name inside "${TINY[@]}" --steps 3 --data tokens.u16 >/dev/null
check "a token file in the data root, named relative to it, trains" wait_state 1 SUCCEEDED 1200

# --- tier directories outside the ssd root
shm=$(refusal submit "${TINY[@]}" --steps 2 --method stronghold --ssd-dir /dev/shm)
check "--ssd-dir /dev/shm -> PERMISSION_DENIED naming offload.ssd_dirs" \
  has "$shm" "PERMISSION_DENIED: offload.ssd_dirs[0]"
check "the refusal names the ssd root" has "$shm" "$SSD_ROOT"
check "plan --ssd-dir /dev/shm is refused too" \
  has "$(refusal plan "${TINY[@]}" --method stronghold --ssd-dir /dev/shm)" \
  "PERMISSION_DENIED: offload.ssd_dirs"

# --- kill -9 under a job with an NVMe tier: the next start removes its directory
# (ssd_tier_test's spilled job: 110 MiB puts 7 of 8 layers' moments on the tier).
mkdir -p "$SSD_ROOT/nvme0"
SPILLED=(--layers 8 --hidden 256 --heads 4 --seq-len 64 --vocab 512 --batch 4 --micro-batch 2
         --method stronghold --window 2 --host-memory-budget 110MiB --ssd-dir nvme0)
"$CTL" submit --name spilled "${SPILLED[@]}" --steps 100000 >/dev/null
check "the spilled job runs" wait_state 2 RUNNING 1200
tier=""
for _ in $(seq 1 300); do
  tier=$(ls -d "$SSD_ROOT"/nvme0/stronghold-job-2-* 2>/dev/null | head -1)
  [ -n "$tier" ] && break
  sleep 0.1
done
check "its tier directory is private to it ($tier)" \
  test -n "$tier" -a "$(stat -c %a "$tier" 2>/dev/null)" = 700
kill_daemon
check "kill -9 leaves the tier directory behind" test -d "$tier"
start_daemon
check "the next start removes it" test ! -e "$tier"
check "and says so" grep -q "removed 1 NVMe tier directory" "$WORK/daemon.log"
"$CTL" cancel 2 >/dev/null 2>&1
check "the resumed job is cancelled" wait_state 2 CANCELLED
check "its new tier directory goes with it" test -z "$(ls -A "$SSD_ROOT/nvme0")"

# --- a token file truncated under a running job fails that job, not the daemon
tokens "$DATA_ROOT/big.u16" 200000
"$CTL" submit --name truncated "${TINY[@]}" --steps 100000 --data big.u16 >/dev/null
check "the job on big.u16 runs" wait_state 3 RUNNING 1200
for _ in $(seq 1 300); do
  [ "$("$CTL" status 3 --output json | json_field step)" != "" ] && break
  sleep 0.1
done
truncate -s 0 "$DATA_ROOT/big.u16"
check "truncating its token file fails the job" wait_state 3 FAILED 600
error=$("$CTL" status 3 --output json | json_field error)
echo "error: $error"
check "with DATA_LOSS naming data.source and the truncation" \
  grep -q "^DATA_LOSS: data.source: .*truncated while the job ran" <<<"$error"
check "the daemon is still serving (list)" "$CTL" list
"$CTL" submit --name after "${TINY[@]}" --steps 2 >/dev/null
check "and trains the next job" wait_state 4 SUCCEEDED 1200

stop_daemon
check "the daemon stops cleanly" test $? -eq 0
finish
