#!/usr/bin/env bash
# Prepared datasets end to end (issue 19): a tokenizer trained here (the
# Python package tokenizers, no download), deploy/tools/prepare_data.py
# turning JSONL into a Megatron indexed dataset inside --data_root, and a
# real daemon training on `--data corpus.idx`: the loss falls, and the job's
# losses equal, bit for bit, a job on the same ids as a flat token file
# (--flat), so the two formats sample alike. Refused without harm to the
# daemon: an index whose magic is wrong, ids beyond model.vocab (naming the
# .bin and the limit), an index without its .bin.
set -uo pipefail

source "${TEST_SRCDIR}/stronghold/tests/integration/daemon_lib.sh"
PREPARE="$RUNFILES/deploy/tools/prepare_data.py"
mkdir -p "$DATA_ROOT" "$WORK/model"

# A byte-level BPE of 384 ids trained on an English-like corpus, and 300
# JSONL documents of that corpus.
python3 - "$WORK" <<'PY'
import json, random, sys
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
work = sys.argv[1]
rng = random.Random(19)
nouns = "fox dog river king bird tree stone child ship city garden engine".split()
verbs = "sees follows builds finds carries watches likes moves guards trains".split()
def doc():
    return " ".join(f"The {rng.choice(nouns)} {rng.choice(verbs)} the {rng.choice(nouns)}."
                    for _ in range(rng.randint(3, 12)))
docs = [doc() for _ in range(300)]
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.train_from_iterator(docs, trainers.BpeTrainer(
    vocab_size=384, special_tokens=["<|endoftext|>"],
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
tok.save(f"{work}/model/tokenizer.json")
with open(f"{work}/docs.jsonl", "w") as f:
    for d in docs:
        f.write(json.dumps({"text": d}) + "\n")
PY
check "a tokenizer and documents" test -s "$WORK/model/tokenizer.json"
python3 "$PREPARE" --tokenizer "$WORK/model" --output-prefix "$DATA_ROOT/corpus" \
  --flat "$WORK/docs.jsonl" >"$WORK/prepare.txt" 2>&1
check "prepare_data.py writes corpus.bin, corpus.idx and corpus.u16" \
  test -s "$DATA_ROOT/corpus.bin" -a -s "$DATA_ROOT/corpus.idx" -a -s "$DATA_ROOT/corpus.u16"
check "prepare_data.py reports 300 documents" grep -q "300 documents" "$WORK/prepare.txt"
cat "$WORK/prepare.txt"
start_daemon

SHAPE=(--layers 2 --hidden 64 --heads 4 --seq-len 32 --batch 8 --lr 3e-3)
TINY=("${SHAPE[@]}" --vocab 384)
"$CTL" submit --name indexed "${TINY[@]}" --steps 20 --data corpus.idx >/dev/null
"$CTL" watch 1 >"$WORK/watch1.txt" 2>&1
check "a job on corpus.idx succeeds" test "$("$CTL" status 1 --output json | json_field state)" = SUCCEEDED
first=$(awk '/^step 1\//{print $4; exit}' "$WORK/watch1.txt")
last=$(awk '/^step 20\//{print $4}' "$WORK/watch1.txt")
check "its loss falls >= 30% ($first -> $last)" \
  python3 -c "import sys; sys.exit(0 if float('$last') <= 0.7 * float('$first') else 1)"
"$CTL" submit --name flat "${TINY[@]}" --steps 20 --data corpus.u16 >/dev/null
"$CTL" watch 2 >"$WORK/watch2.txt" 2>&1
losses() { awk '/^step [0-9]+\//{print $1, $2, $4}' "$1"; }
check "the same ids as a flat file train to the same losses, bit for bit" \
  test "$(losses "$WORK/watch1.txt")" = "$(losses "$WORK/watch2.txt")" -a -n "$(losses "$WORK/watch1.txt")"

refusal() { "$CTL" submit "${SHAPE[@]}" --steps 2 "$@" >/dev/null 2>"$WORK/refusal.txt" \
  && echo ACCEPTED; cat "$WORK/refusal.txt"; }
has() { grep -qF -- "$2" <<<"$1"; }
# --- a lying index
cp "$DATA_ROOT/corpus.bin" "$DATA_ROOT/bad.bin"
python3 -c "import sys; d = open(sys.argv[1], 'rb').read(); open(sys.argv[2], 'wb').write(b'XMIDIDX' + d[7:])" \
  "$DATA_ROOT/corpus.idx" "$DATA_ROOT/bad.idx"
bad=$(refusal --vocab 384 --data bad.idx)
echo "bad magic: $bad"
check "a bad magic -> INVALID_ARGUMENT naming data.source and the .idx" \
  has "$bad" "INVALID_ARGUMENT: data.source: '$DATA_ROOT/bad.idx': does not start with"
# --- ids beyond the vocabulary
small=$(refusal --data corpus.idx --vocab 256)
echo "small vocabulary: $small"
check "ids beyond model.vocab -> INVALID_ARGUMENT naming the .bin and the limit" \
  has "$small" "of '$DATA_ROOT/corpus.bin' is not below model.vocab (256)"
# --- an index without its .bin
cp "$DATA_ROOT/corpus.idx" "$DATA_ROOT/lonely.idx"
lonely=$(refusal --vocab 384 --data lonely.idx)
echo "no .bin: $lonely"
check "an index without its .bin -> PERMISSION_DENIED naming data.source and the .bin" \
  has "$lonely" "PERMISSION_DENIED: data.source: must name a readable regular file (and its .bin beside it)"
check "--token-bytes with an index is refused" \
  has "$(refusal --vocab 384 --data corpus.idx --token-bytes 2)" "data.token_bytes: must be 0 for a Megatron index"
check "the daemon still serves" quiet "$CTL" node
finish
