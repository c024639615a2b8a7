#!/usr/bin/env bash
# Opt-in (tags manual: needs torch and transformers in python3, which CI
# does not have): regenerates the Hugging Face fixtures with transformers
# (tests/fixtures/hf/make_fixtures.py), checks the regenerated references
# against the committed ones, fine-tunes the regenerated GPT2LMHeadModel
# and LlamaForCausalLM through the daemon, and loads the exported directory with
# transformers.AutoModelForCausalLM.from_pretrained: no missing or
# unexpected keys, the weights of PyTorch's 5 AdamW steps, and it generates.
#   bazel test //tests/integration:hf_live_test \
#     --test_env=HF_PYTHON=$(python3 -c 'import sys; print(sys.executable)')
# (HF_PYTHON: a python3 with torch and transformers; Bazel's PATH for tests
# is /bin:/usr/bin, which may have another.)
set -uo pipefail
PY=${HF_PYTHON:-python3}
source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"
FIXTURES="$RUNFILES/tests/fixtures/hf"
COMPARE="$RUNFILES/tests/integration/hf_compare.py"
LOAD="$RUNFILES/tests/integration/hf_load_check.py"

"$PY" -c "import torch, transformers" || {
  echo "FAIL: this opt-in test needs torch and transformers in \$HF_PYTHON ($PY)"; exit 1; }
start_daemon
"$PY" "$RUNFILES/tests/fixtures/hf/make_fixtures.py" "$DATA_ROOT" >"$WORK/make.txt" 2>&1
check "make_fixtures.py regenerates the fixtures" test -f "$DATA_ROOT/gpt2/trained.safetensors"
for model in gpt2 llama; do
  # Regenerated with this machine's torch: the same within fp32 rounding.
  check "$model: the regenerated trained weights match the committed ones" \
    "$PY" - "$DATA_ROOT/$model/trained.safetensors" "$FIXTURES/$model/trained.safetensors" <<'PY'
import sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert a.keys() == b.keys()
for k in a:
    d = (a[k] - b[k]).abs().max().item()
    assert d <= 1e-4 * max(b[k].abs().max().item(), 1e-5), (k, d)
PY
done

n=0
for model in gpt2 llama; do
  "$CTL" submit --name "live-$model" --init-from "$model" --seq-len 16 --batch 4 \
    --micro-batch 2 --steps 5 --lr 1e-3 --warmup-steps 2 --min-lr 1e-4 \
    --weight-decay 0.1 --beta1 0.9 --beta2 0.95 --eps 1e-8 --clip-norm 0.5 \
    --seed 1234 --data tokens.u16 >/dev/null
  n=$((n + 1))
  check "$model: the job succeeds" wait_state "$n" SUCCEEDED 1200
  "$CTL" fetch "$n" --format hf --out "$WORK/hf-$model" >/dev/null
  check "$model: every weight within 1e-4 of PyTorch's" \
    python3 "$COMPARE" "$WORK/hf-$model" "$DATA_ROOT/$model/trained.safetensors"
  check "$model: transformers loads the export without key warnings, and it generates" \
    "$PY" "$LOAD" "$WORK/hf-$model" "$DATA_ROOT/$model/trained.safetensors"
done
finish
