#!/usr/bin/env bash
# End to end, a Hugging Face model through the daemon (docs/finetune.md):
#  - submit --init-from the fixture GPT2LMHeadModel (sharded, vocab 300),
#    5 steps, fetch --format hf: every weight within 1e-4 of the same 5
#    steps of torch.optim.AdamW (tests/fixtures/hf/make_fixtures.py), with
#    RESIDENT and with STRONGHOLD W=1 (the NVMe tier's case is
#    tests/core/hf/hf_finetune_test: this model is too small for the planner
#    to spill it);
#  - spec fields that contradict config.json, a directory outside the data
#    root, a missing shard, a wrong shape and an unknown architecture are
#    refused at submission naming what is wrong; NaN weights fail the job
#    naming the tensor; the daemon keeps serving and trains the next job.
set -uo pipefail
source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"
FIXTURES="$RUNFILES/tests/fixtures/hf"
COMPARE="$RUNFILES/tests/integration/hf_compare.py"

# make_fixtures.py's TRAIN.
TRAIN=(--batch 4 --micro-batch 2 --steps 5 --lr 1e-3 --warmup-steps 2
       --min-lr 1e-4 --weight-decay 0.1 --beta1 0.9 --beta2 0.95 --eps 1e-8
       --clip-norm 0.5 --seed 1234 --data tokens.u16)

refusal() {  # refusal FLAGS...: the stderr of a refused submit
  if "$CTL" submit "$@" >/dev/null 2>"$WORK/refusal.txt"; then
    echo "ACCEPTED"
  else
    cat "$WORK/refusal.txt"
  fi
}

refused_naming() {  # refused_naming DIR WHAT PATTERN: submit --init-from DIR is refused, its error matching PATTERN
  local out
  out=$(refusal --init-from "$1" "${TRAIN[@]}")
  echo "$out"
  check "$2" grep -q "$3" <<<"$out"
}

model_copy() {  # model_copy NAME [FIXTURE]: the fixture (symlinks resolved) as $DATA_ROOT/NAME
  rm -rf "$DATA_ROOT/$1"
  mkdir -p "$DATA_ROOT/$1"
  cp -L "$FIXTURES/${2:-gpt2}"/config.json "$FIXTURES/${2:-gpt2}"/model* "$DATA_ROOT/$1/"
  chmod u+w "$DATA_ROOT/$1"/*
}

start_daemon
cp -L "$FIXTURES/tokens.u16" "$DATA_ROOT/tokens.u16"
model_copy gpt2

# finetune LABEL MODEL FLAGS...: submits --init-from MODEL (the fixture of
# that name), waits for it, and leaves its status in $WORK/status-LABEL.json
# and its Hugging Face export in $WORK/hf-LABEL.
n=0
finetune() {
  local label=$1 model=$2
  shift 2
  "$CTL" submit --name "hf-$label" --init-from "$model" "${TRAIN[@]}" "$@" \
    >"$WORK/submit-$label.txt" 2>&1
  n=$((n + 1))
  check "$label: submit --init-from $model is accepted" \
    grep -q "jobs/$n" "$WORK/submit-$label.txt"
  check "$label: the job succeeds" wait_state "$n" SUCCEEDED 1200
  "$CTL" status "$n" --output json >"$WORK/status-$label.json"
  "$CTL" fetch "$n" --format hf --out "$WORK/hf-$label" >"$WORK/fetch-$label.txt" 2>&1
}
# matches_pytorch LABEL MODEL: the export against make_fixtures.py's 5 steps.
matches_pytorch() {
  check "$1: every weight within 1e-4 of PyTorch's 5 AdamW steps" \
    python3 "$COMPARE" "$WORK/hf-$1" "$FIXTURES/$2/trained.safetensors"
}

for method in resident stronghold; do
  case $method in
    resident) finetune "$method" gpt2 --method resident ;;
    stronghold) finetune "$method" gpt2 --method stronghold --window 1 ;;
  esac
  check "$method: the model's sizes come from config.json (vocab 300, unpadded)" \
    python3 -c "
import json, sys
m = json.load(open('$WORK/status-$method.json'))['spec']['model']
sys.exit(not (m['vocab'] == 300 and m['vocab_multiple'] == 1 and m['hidden'] == 32))"
  check "$method: fetch --format hf downloads config, index and shards" \
    test -f "$WORK/hf-$method/config.json" -a \
    -f "$WORK/hf-$method/generation_config.json" -a \
    -f "$WORK/hf-$method/model-00001-of-00001.safetensors"
  matches_pytorch "$method" gpt2
done

# The tiny LlamaForCausalLM (GQA, untied head, bf16 on disk): its sizes and
# architecture from config.json, 5 steps at the fixtures' length 16, the
# export a LlamaForCausalLM within 1e-4 of PyTorch's.
model_copy llama llama
finetune llama llama --seq-len 16 --method stronghold --window 1
check "llama: architecture, kv_heads and intermediate come from config.json" \
  python3 -c "
import json, sys
m = json.load(open('$WORK/status-llama.json'))['spec']['model']
sys.exit(not (m['architecture'] == 'LLAMA' and m['kv_heads'] == 2 and
              m['intermediate'] == 88 and m['vocab_multiple'] == 1))"
check "llama: the export is a LlamaForCausalLM" \
  grep -q '"LlamaForCausalLM"' "$WORK/hf-llama/config.json"
matches_pytorch llama llama

# Refusals at submission, each naming what is wrong.
out=$(refusal --init-from gpt2 "${TRAIN[@]}" --hidden 64)
echo "$out"
check "a contradicting --hidden names both values" \
  grep -q "model.hidden 64 contradicts config.json n_embd 32" <<<"$out"
out=$(refusal --init-from /etc "${TRAIN[@]}")
check "a directory outside the data root is PERMISSION_DENIED" \
  grep -q "init_from: must name a directory inside the daemon's --data_root" <<<"$out"
out=$(refusal --init-from gpt2 "${TRAIN[@]}" --resume-from jobs/1)
check "init_from with resume_from is refused" grep -q "not with resume_from" <<<"$out"

model_copy missing
rm "$DATA_ROOT/missing/model-00002-of-00002.safetensors"
refused_naming missing "a missing shard is named" \
  "INVALID_ARGUMENT.*shard .*model-00002-of-00002.safetensors"

model_copy shape
sed -i 's/"n_positions": 16/"n_positions": 20/' "$DATA_ROOT/shape/config.json"
refused_naming shape "a wrong shape names the tensor, the expected and the found shape" \
  "transformer.wpe.weight has shape \[16, 32\], expected \[20, 32\]"

model_copy arch
sed -i 's/GPT2LMHeadModel/FalconForCausalLM/' "$DATA_ROOT/arch/config.json"
refused_naming arch "an unknown architecture is refused by name" \
  "FalconForCausalLM.*not supported"

# NaN in a weight: the headers are sound (accepted), the load fails the job.
model_copy nan
python3 - "$DATA_ROOT/nan/model-00001-of-00002.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
data = bytearray(open(path, "rb").read())
(n,) = struct.unpack("<Q", data[:8])
header = json.loads(data[8:8 + n])
begin = header["transformer.h.0.attn.c_attn.weight"]["data_offsets"][0]
data[8 + n + begin + 12:8 + n + begin + 16] = struct.pack("<f", float("nan"))
open(path, "wb").write(bytes(data))
PY
"$CTL" submit --name nan --init-from nan "${TRAIN[@]}" >/dev/null
n=$((n + 1))
check "NaN weights fail the job" wait_state "$n" FAILED 1200
error=$("$CTL" status "$n" --output json | json_field error)
echo "error: $error"
check "naming the tensor" \
  grep -q "init_from: .*transformer.h.0.attn.c_attn.weight holds nan" <<<"$error"

"$CTL" submit --name after --init-from gpt2 "${TRAIN[@]}" >/dev/null
n=$((n + 1))
check "the daemon keeps serving and trains the next job" wait_state "$n" SUCCEEDED 1200

finish
