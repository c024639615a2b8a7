#!/usr/bin/env bash
# End to end: a real strongholdd process on a temporary unix socket, driven by
# the real strongholdctl binary. Checks training, status, fetch, cancel, bad
# specs, unknown jobs, graceful SIGTERM and restart, bf16 and fp16 jobs, a llama job.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"

# loss_falls WATCH_FILE LAST_STEP FRACTION WHAT: step LAST_STEP's loss is at most FRACTION x step 1's
loss_falls() {
  local first last
  first=$(awk '/^step 1\//{print $4; exit}' "$1")
  last=$(awk -v at="^step $2/" '$0 ~ at {print $4}' "$1")
  check "$4 ($first -> $last)" \
    python3 -c "import sys; sys.exit(0 if float('$last') <= $3 * float('$first') else 1)"
}

start_daemon

# --- a tiny job trains, and its loss falls by at least 30%
"$CTL" submit --name tiny --layers 2 --hidden 64 --heads 4 --seq-len 64 --steps 30 \
  --batch 8 --lr 3e-3 >"$WORK/submit.txt" 2>&1
check "submit tiny job" grep -q 'jobs/1' "$WORK/submit.txt"
"$CTL" watch 1 >"$WORK/watch.txt" 2>&1
check "watch exits 0 for a SUCCEEDED job" test $? -eq 0
loss_falls "$WORK/watch.txt" 30 0.7 "loss falls >= 30%"
"$CTL" status 1 --output json >"$WORK/status.json"
check "status SUCCEEDED" test "$(json_field state <"$WORK/status.json")" = SUCCEEDED
check "status names the job" test "$(json_field display_name <"$WORK/status.json")" = tiny
check "status has the last loss" test -n "$(json_field last_loss <"$WORK/status.json")"

# --- fetch the checkpoint; its SHA-256 matches the file and the manifest
"$CTL" fetch 1 --out "$WORK/out" >"$WORK/fetch.txt" 2>&1
check "fetch exits 0" test $? -eq 0
digest=$(sha256sum "$WORK/out/model.safetensors" | cut -d' ' -f1)
check "fetched digest printed" grep -q "$digest" "$WORK/fetch.txt"
check "fetched digest matches the manifest" \
  grep -q "$digest" "$STATE/jobs/1/checkpoints/step-000030/manifest.json"
python3 - "$WORK/out/model.safetensors" <<'PY' && ok "safetensors readable" || bad "safetensors readable"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + n])
end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
assert 8 + n + end == len(data), "size mismatch"
assert header["layers.1.mlp.fc2.weight"]["shape"] == [64, 256]
PY

# --- the windowed engine through the daemon: STRONGHOLD, automatic window, trace
"$CTL" submit --name windowed --layers 4 --hidden 64 --heads 4 --seq-len 64 --steps 6 \
  --method stronghold --window 0 --gpu-memory-budget 64MiB >/dev/null
"$CTL" watch 2 >"$WORK/watch2.txt" 2>&1
check "STRONGHOLD job succeeds" test $? -eq 0
check "automatic window reported" grep -q "window [0-9]* chosen" "$WORK/watch2.txt"
"$CTL" trace 2 --out "$WORK/trace.json" >/dev/null
check "trace is Chrome trace JSON" python3 - "$WORK/trace.json" <<'PY'
import json, sys
events = json.load(open(sys.argv[1]))["traceEvents"]
names = {e["name"].split()[0] for e in events if e.get("ph") == "X"}
assert {"fwd", "bwd", "h2d", "d2h", "adamw"} <= names, names
PY
"$CTL" submit --layers 4 --hidden 64 --heads 4 --seq-len 64 --steps 6 --method stronghold \
  --window 1 --gpu-memory-budget 100KiB >/dev/null 2>"$WORK/err.txt"
check "too small a device budget -> RESOURCE_EXHAUSTED with the numbers" \
  grep -q "RESOURCE_EXHAUSTED: device memory: needs .* the smallest budget that works is" "$WORK/err.txt"

# --- cancel a running job
"$CTL" submit --name long --layers 2 --hidden 64 --heads 4 --seq-len 64 --steps 100000 >/dev/null
check "long job starts" wait_state 3 RUNNING
"$CTL" cancel 3 >"$WORK/cancel.txt" 2>&1
check "cancel -> CANCELLED" wait_state 3 CANCELLED
"$CTL" cancel 3 >/dev/null 2>"$WORK/cancel2.txt"
check "cancelling an ended job fails" grep -q FAILED_PRECONDITION "$WORK/cancel2.txt"

# --- bad specs: an error naming the field, the daemon keeps serving
bad_spec() {  # bad_spec FIELD FLAGS... (defaults are the daemon's tiny model)
  local field=$1; shift
  "$CTL" submit --steps 5 "$@" >/dev/null 2>"$WORK/err.txt"
  local rc=$?
  if [ $rc -ne 0 ] && grep -q INVALID_ARGUMENT "$WORK/err.txt" && grep -q "$field" "$WORK/err.txt"; then
    ok "bad spec names $field"
  else
    bad "bad spec $* (rc=$rc): $(cat "$WORK/err.txt")"
  fi
}
bad_spec model.layers --layers 0
bad_spec model.hidden --hidden 66
bad_spec model.seq_len --seq-len 100000
bad_spec training.lr --lr -1
bad_spec training.batch --batch 6 --micro-batch 4
"$CTL" submit --steps 5 --data /nonexistent/tokens.u16 >/dev/null 2>"$WORK/err.txt"
check "a token file outside the data root -> PERMISSION_DENIED naming data.source" \
  grep -q "PERMISSION_DENIED: data.source" "$WORK/err.txt"
"$CTL" status 999 >/dev/null 2>"$WORK/err.txt"
check "unknown job -> NOT_FOUND" grep -q NOT_FOUND "$WORK/err.txt"
check "daemon still serving" "$CTL" node

# --- SIGTERM during training: finish the step, checkpoint, exit 0
"$CTL" submit --name interrupted --layers 2 --hidden 64 --heads 4 --seq-len 64 --steps 100000 >/dev/null
check "job 4 starts" wait_state 4 RUNNING
sleep 1
stop_daemon
check "daemon exits 0 on SIGTERM" test $? -eq 0
check "shutdown checkpoint written" \
  bash -c "ls '$STATE/jobs/4/checkpoints' | grep -q '^step-'"

# --- restart: earlier jobs still listed, the interrupted one runs again
start_daemon
"$CTL" list --output json >"$WORK/list.json"
check "jobs survive a restart" python3 - "$WORK/list.json" <<'PY'
import json, sys
jobs = {j["name"]: j["state"] for j in json.load(open(sys.argv[1]))["jobs"]}
assert jobs["jobs/1"] == "SUCCEEDED", jobs
assert jobs["jobs/2"] == "SUCCEEDED", jobs
assert jobs["jobs/3"] == "CANCELLED", jobs
assert jobs["jobs/4"] in ("QUEUED", "RUNNING"), jobs
PY
"$CTL" cancel 4 >/dev/null 2>&1
check "interrupted job cancelled after restart" wait_state 4 CANCELLED

# --- mixed precision through the daemon: bf16 and fp16 STRONGHOLD jobs train
"$CTL" submit --name bf16 --layers 4 --hidden 64 --heads 4 --seq-len 64 --steps 6 \
  --method stronghold --window 2 --precision bf16 >/dev/null
"$CTL" watch 5 >"$WORK/watch5.txt" 2>&1
check "bf16 STRONGHOLD job succeeds" test $? -eq 0
check "bf16 job says its precision" grep -q "method STRONGHOLD, bf16" "$WORK/watch5.txt"
"$CTL" submit --name fp16 --layers 4 --hidden 64 --heads 4 --seq-len 64 --steps 6 \
  --method stronghold --window 2 --precision fp16 >/dev/null
"$CTL" watch 6 >"$WORK/watch6.txt" 2>&1
check "fp16 STRONGHOLD job succeeds" test $? -eq 0
check "fp16 steps show the loss scale" grep -q "loss scale 65536" "$WORK/watch6.txt"

# --- speculative updates: planned (the host backup), trained, refused where they do not apply;
# with the embedding's optimizer on the device (planned there)
SPEC=(--layers 4 --hidden 64 --heads 4 --seq-len 64 --steps 6 --method stronghold --window 2
      --speculative-updates on --device-embedding-optimizer on --device-resident-layers 1)
"$CTL" plan "${SPEC[@]}" >"$WORK/plan-spec.txt" 2>&1
check "the plan holds the speculative backup" grep -q "host.speculative_backup" "$WORK/plan-spec.txt"
check "the plan holds the embedding's optimizer on the device" \
  grep -q "embedding.optimizer" "$WORK/plan-spec.txt"
check "the plan holds the resident layer" grep -q "layers.resident" "$WORK/plan-spec.txt"
"$CTL" submit --layers 2 --hidden 64 --heads 4 --method stronghold --device-resident-layers 2 \
  >/dev/null 2>"$WORK/err-res.txt"
check "as many resident layers as layers -> INVALID_ARGUMENT naming the field" \
  grep -q "INVALID_ARGUMENT: offload.device_resident_layers" "$WORK/err-res.txt"
"$CTL" submit --name spec "${SPEC[@]}" >/dev/null
"$CTL" watch 7 >"$WORK/watch7.txt" 2>&1
check "speculative STRONGHOLD job succeeds" test $? -eq 0
"$CTL" submit --layers 2 --hidden 64 --heads 4 --speculative-updates on >/dev/null 2>"$WORK/err-spec.txt"
check "speculative updates for resident -> INVALID_ARGUMENT naming the field" \
  grep -q "INVALID_ARGUMENT: offload.speculative_updates" "$WORK/err-spec.txt"
"$CTL" submit --layers 2 --speculative-updates maybe >/dev/null 2>"$WORK/err-spec2.txt"
check "a bad --speculative-updates value names the flag" \
  grep -q -- "--speculative-updates: invalid value \"maybe\" (expected on|off|auto)" "$WORK/err-spec2.txt"
# --- the llama architecture (GQA, untied head): planned, trained by STRONGHOLD, fetched with its
# tensor names; llama-only fields on a gpt spec are refused naming the field
LLAMA=(--architecture llama --layers 4 --hidden 64 --heads 4 --kv-heads 2 --intermediate 112
       --seq-len 64 --steps 20 --batch 8 --lr 3e-3 --method stronghold --window 2)
"$CTL" plan "${LLAMA[@]}" >"$WORK/plan-llama.txt" 2>&1
check "plan prints the architecture" grep -Eq "^architecture: +llama$" "$WORK/plan-llama.txt"
"$CTL" submit --name llama "${LLAMA[@]}" >/dev/null
"$CTL" watch 8 >"$WORK/watch8.txt" 2>&1
check "llama STRONGHOLD job succeeds" test $? -eq 0
loss_falls "$WORK/watch8.txt" 20 0.8 "llama loss falls >= 20%"
"$CTL" fetch 8 --out "$WORK/out8" >/dev/null 2>&1
check "llama checkpoint holds its tensors" python3 - "$WORK/out8/model.safetensors" <<'PY'
import json, struct, sys
data = open(sys.argv[1], "rb").read()
header = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])
assert header["layers.0.attn.qkv.weight"]["shape"] == [128, 64], header  # 4 q + 2 k + 2 v heads of 16
assert header["layers.3.mlp.gate_up.weight"]["shape"] == [224, 64]
assert header["lm_head.weight"]["shape"] == [256, 64] and "wpe.weight" not in header
PY
check "the manifest records the architecture" \
  grep -q '"architecture": "llama", "kv_heads": 2, "intermediate": 112' \
  "$STATE/jobs/8/checkpoints/step-000020/manifest.json"
bad_spec model.kv_heads --kv-heads 2
bad_spec model.kv_heads --architecture llama --kv-heads 3

stop_daemon
check "daemon exits 0 again" test $? -eq 0

finish
