#!/usr/bin/env bash
# plan --predict end to end (issue 18): named profiles, a profile sent as a
# file (and hostile ones refused naming the field), every method, JSON
# output, the seed's --case tables, and the node's measured profile (cached
# in the state directory; a corrupt cache is measured again).
set -u
source "$(dirname "$0")/daemon_lib.sh"

M="--layers 8 --hidden 512 --heads 8 --seq-len 256 --batch 4 --micro-batch 4 --vocab 256"
# The start-up measurement runs in the background: poll until it is there.
wait_profile() {
  for _ in $(seq 1 300); do
    "$CTL" --output json node | grep -q '"h2d_gbps": [1-9]' && return 0
    sleep 0.1
  done
  return 1
}
start_daemon --node_profile=true --node_profile_nvme_mib=16
check "the node's profile is measured after start-up" wait_profile
# The NVMe tier is measured in the --ssd_root the daemon was given, and
# nothing is left there.
nvme_source() {
  "$CTL" --output json node | python3 -c \
    "import json,sys; print(json.load(sys.stdin)['profile'].get('nvme_source', ''))"
}
check "the NVMe tier is measured at start-up ($(nvme_source))" \
  grep -q "^measured: .* in $SSD_ROOT" <<<"$(nvme_source)"
check "node prints the NVMe tier's bandwidth" grep -q "NVMe tier:.*read [0-9.]* GB/s, write" <<<"$("$CTL" node)"
check "the measurement leaves nothing in the ssd root" test -z "$(ls -A "$SSD_ROOT")"

for method in resident l2l stronghold; do
  out=$("$CTL" plan $M --method "$method" --hardware h200 2>&1)
  check "$method: predicted on h200" grep -q "predicted step:" <<<"$out"
  check "$method: alternatives listed" grep -q "STRONGHOLD (automatic window)" <<<"$out"
done
json=$("$CTL" --output json plan $M --method stronghold --hardware v100-32gb-vm)
step=$(python3 -c "import json,sys; p=json.load(sys.stdin)['prediction']['predicted']; print(p['predicted_step_s'] > 0 and p['bottleneck'] in ('compute','pcie','cpu_optimizer','nvme'))" <<<"$json")
check "json has predicted_step_s and bottleneck" test "$step" = True

# A profile sent as a file: the built-in h200 printed back as JSON works...
"$CTL" --output json node | python3 -c "import json,sys; print(json.load(sys.stdin)['profile']['json'])" >"$WORK/node.json"
check "node shows its measured profile" python3 -c "import json; json.load(open('$WORK/node.json'))"
check "a profile file is accepted" quiet "$CTL" plan $M --hardware "$WORK/node.json"
# ... and hostile ones are refused, naming the field.
sed 's/"h2d_gbps": {"value": [0-9.e+-]*/"h2d_gbps": {"value": 0/' "$WORK/node.json" >"$WORK/zero.json"
err=$("$CTL" plan $M --hardware "$WORK/zero.json" 2>&1)
check "zero bandwidth refused: INVALID_ARGUMENT naming figures.h2d_gbps" \
  grep -q "INVALID_ARGUMENT.*figures.h2d_gbps" <<<"$err"
sed 's/"cpu_threads"/"cpu_threadz"/' "$WORK/node.json" >"$WORK/typo.json"
err=$("$CTL" plan $M --hardware "$WORK/typo.json" 2>&1)
check "unknown figure refused" grep -q "INVALID_ARGUMENT.*cpu_threadz" <<<"$err"
printf '{"name": "x", "figures": {"h2d_gbps": {"value": NaN}}}' >"$WORK/nan.json"
err=$("$CTL" plan $M --hardware "$WORK/nan.json" 2>&1)
check "NaN refused" grep -q "INVALID_ARGUMENT" <<<"$err"
err=$("$CTL" plan $M --hardware a100 2>&1)
check "unknown name: NOT_FOUND listing the built-in ones" \
  grep -q "NOT_FOUND.*h100-pcie-gen5, h200, v100-32gb-vm" <<<"$err"

# The node's own profile (measured at start-up, the job's layer shape on demand).
out=$("$CTL" plan $M --method stronghold --predict 2>&1)
check "predicted on the measured profile" grep -q "measured on this node" <<<"$out"
check "the job's layer shape was measured and cached" \
  grep -q '"layer_timings": \[$' "$STATE/node_profile.json"

# Automatic configuration: the options a spec leaves unset are chosen on the
# measured profile at submission; the plan and the job's events say what and
# why, and the job's effective spec records it. Explicit options stay.
out=$("$CTL" plan $M --method stronghold --clip-norm 1 2>&1)
check "plan: the automatic options' choice and its prediction" \
  grep -q "automatic options: .*predicted .* s/step on hardware profile" <<<"$out"
out=$("$CTL" plan $M --method stronghold --speculative-updates off \
  --device-embedding-optimizer off --device-resident-layers 0 2>&1)
check "plan: explicit options are not automatic" \
  test "$(grep -c "automatic options" <<<"$out")" = 0
job=$("$CTL" submit $M --method stronghold --steps 2 --output json | json_field name)
check "a job with automatic options runs" wait_state "$job" SUCCEEDED
check "its first events say what was chosen and why" \
  grep -q "automatic options: .*predicted" <<<"$("$CTL" watch "$job" 2>&1)"
spec=$("$CTL" status "$job" --output json)
check "its effective spec records the choice" python3 -c "
import json,sys; o=json.loads(sys.argv[1])['spec']['offload']
assert 'speculative_updates' in o or 'speculativeUpdates' in o, o
assert 'device_embedding_optimizer' in o or 'deviceEmbeddingOptimizer' in o, o" "$spec"

# The seed's tables.
S="--hidden 2048 --heads 16 --seq-len 1024 --batch 4 --micro-batch 4 --vocab 50304 --clip-norm 0"
for c in largest throughput window; do
  out=$("$CTL" plan --layers 32 $S --case "$c" --hardware v100-32gb-vm 2>&1)
  check "--case $c" grep -q "SAMPLES/S" <<<"$out"
done
err=$("$CTL" plan $M --case fastest --hardware h200 2>&1)
check "--case fastest refused" grep -q "expected largest, throughput or window" <<<"$err"

# A corrupt cache is measured again, never trusted; a good one is read.
check "daemon stops" stop_daemon
echo '{"name": "this-node", "figures": {}}' >"$STATE/node_profile.json"
start_daemon --node_profile=true --node_profile_nvme_mib=16
wait_profile
check "corrupt cache measured again" python3 -c "
import json; json.load(open('$STATE/node_profile.json'))['figures']['h2d_gbps']"
out=$("$CTL" node)
check "node: measured at start-up" grep -q "measured at start-up" <<<"$out"
check "daemon stops" stop_daemon
start_daemon --node_profile=true --node_profile_nvme_mib=16
out=$("$CTL" node)
check "node: read from the cache" grep -q "state directory cache" <<<"$out"
# A cache from before the daemon had NVMe roots: the tier alone is measured.
check "daemon stops" stop_daemon
python3 - "$STATE/node_profile.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
for f in ("nvme_read_gbps", "nvme_write_gbps"):
    p["figures"][f] = {"value": 1, "source": "not measured at start-up (io_bench does)"}
open(sys.argv[1], "w").write(json.dumps(p))
PY
start_daemon --node_profile=true --node_profile_nvme_mib=16
wait_nvme() {
  for _ in $(seq 1 300); do
    grep -q "^measured" <<<"$(nvme_source)" && return 0
    sleep 0.1
  done
  return 1
}
check "a cache without NVMe figures gets them measured" wait_nvme
check "the rest still comes from the cache" grep -q "state directory cache" <<<"$("$CTL" node)"
check "remeasure on request" quiet "$CTL" node --remeasure
out=$("$CTL" node)
check "node: measured again" grep -q "measured at start-up" <<<"$out"
check "daemon stops" stop_daemon

# Without a profile: a clear refusal.
start_daemon
err=$("$CTL" plan $M --predict 2>&1)
check "no measured profile: FAILED_PRECONDITION" grep -q "FAILED_PRECONDITION" <<<"$err"
finish
