#!/bin/bash
# The acceptance of data parallelism through real daemons (issue 17): a job
# on 2 ranks x 1 micro-batch equals the same job on 1 rank x 2 micro-batches
# bit for bit in fp32: the loss of every step on both ranks, and the final
# checkpoint fetched from rank 0 (model and optimizer files). Over W=1, W=2,
# L2L, clipping off and at 1.0, speculative updates on and off.
source "$(dirname "$0")/daemon_lib.sh"
source "$(dirname "$0")/two_daemons_lib.sh"
job_name() { json_field name; }
# Step -> loss (repr of the double) of the metrics events of watch --output json.
losses() {
  python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if "metrics" in e:
        print(e["metrics"]["step"], repr(e["metrics"]["loss"]))
PY
}
export STRONGHOLD_JOB_KEY="train-test-key-$$"

BASE=(--layers 4 --hidden 64 --heads 4 --seq-len 32 --vocab 256 --batch 2
      --micro-batch 1 --steps 6 --lr 3e-3 --precision fp32 --seed 7)
CASES=(
  "w1-noclip:--method stronghold --window 1 --clip-norm 0"
  "w2-clip:--method stronghold --window 2 --clip-norm 1.0"
  "w2-clip-spec:--method stronghold --window 2 --clip-norm 1.0 --speculative-updates on"
  "l2l-clip:--method l2l --clip-norm 1.0"
  "l2l-clip-spec:--method l2l --clip-norm 1.0 --speculative-updates on"
)
for c in "${CASES[@]}"; do
  name=${c%%:*}
  read -r -a extra <<<"${c#*:}"
  # One rank, two micro-batches: the reference.
  ref=$(A submit "${BASE[@]}" "${extra[@]}" --output json | job_name)
  A watch "$ref" --output json >"$WORK/$name-ref.json" || { bad "$name: the reference failed"; continue; }
  # Two ranks, one micro-batch each.
  PORT=$(free_port)
  r0=$(A submit "${BASE[@]}" "${extra[@]}" --world-size 2 --rank 0 \
    --master-addr 127.0.0.1 --master-port "$PORT" --job-key "$STRONGHOLD_JOB_KEY" --output json | job_name)
  r1=$(B submit "${BASE[@]}" "${extra[@]}" --world-size 2 --rank 1 --local-rank 1 \
    --master-addr 127.0.0.1 --master-port "$PORT" --job-key "$STRONGHOLD_JOB_KEY" --output json | job_name)
  A watch "$r0" --output json >"$WORK/$name-r0.json"; rc0=$?
  B watch "$r1" --output json >"$WORK/$name-r1.json"; rc1=$?
  check "$name: both ranks succeed ($rc0, $rc1)" [ "$rc0" = 0 ] && [ "$rc1" = 0 ]
  losses "$WORK/$name-ref.json" >"$WORK/$name-ref.txt"
  losses "$WORK/$name-r0.json" >"$WORK/$name-r0.txt"
  losses "$WORK/$name-r1.json" >"$WORK/$name-r1.txt"
  check "$name: 6 steps" [ "$(wc -l <"$WORK/$name-ref.txt")" = 6 ]
  check "$name: rank 0's losses == 1 rank x 2 micro-batches, bit for bit" \
    cmp -s "$WORK/$name-ref.txt" "$WORK/$name-r0.txt"
  check "$name: rank 1's losses == rank 0's" \
    cmp -s "$WORK/$name-r0.txt" "$WORK/$name-r1.txt"
  A fetch "$ref" --out "$WORK/$name-ref-ckpt" >/dev/null
  A fetch "$r0" --out "$WORK/$name-r0-ckpt" >/dev/null
  for f in model.safetensors optimizer.safetensors; do
    check "$name: final $f bit for bit" \
      cmp -s "$WORK/$name-ref-ckpt/$f" "$WORK/$name-r0-ckpt/$f"
  done
done

finish
