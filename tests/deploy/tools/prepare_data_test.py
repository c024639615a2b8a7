#!/usr/bin/env python3
"""deploy/tools/prepare_data.py on a tokenizer trained here (no download).

Checks the Megatron index byte by byte against the format (MMIDIDX, version
1, dtype code, counts, lengths, pointers, document index), the .bin against
the tokenizer's own encoding of each document followed by the end-of-text
id, the flat file against the .bin, where the end-of-text id comes from,
the uint16/int32 choice, and that bad input (a missing key, an empty input,
an id beyond --dtype, bad JSON, no end-of-text token) exits 2 with one line
naming the input, the line and the limit, leaving no output behind.
"""

import array
import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", ".."), "stronghold")
TOOL = os.path.join(RUNFILES, "deploy/tools/prepare_data.py")
DOCS = [
    "The quick red fox follows the lazy dog at night.",
    "7 plus 5 is 12. Counting: 3 4 5 6 7 8.",
    "",  # empty: skipped
    "Every green garden watches the old ship near the sea.",
    "Caf\u00e9 na\u00efve \u2014 unicode text survives byte-level BPE.",
]


def train_tokenizer(directory, special=("<|endoftext|>",)):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=list(special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([d for d in DOCS if d] * 20, trainer)
    os.makedirs(directory, exist_ok=True)
    tok.save(os.path.join(directory, "tokenizer.json"))
    return tok


def read_index(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:9] == b"MMIDIDX\x00\x00", data[:9]
    version, code, n, m = struct.unpack_from("<QBQQ", data, 9)
    at = 34
    lengths = array.array("i", data[at:at + 4 * n]); at += 4 * n
    pointers = array.array("q", data[at:at + 8 * n]); at += 8 * n
    documents = array.array("q", data[at:at + 8 * m]); at += 8 * m
    assert at == len(data), (at, len(data))
    return version, code, list(lengths), list(pointers), list(documents)


class PrepareDataTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.model = os.path.join(self.dir, "model")
        self.tok = train_tokenizer(self.model)
        self.eot = self.tok.token_to_id("<|endoftext|>")

    def path(self, name):
        return os.path.join(self.dir, name)

    def jsonl(self, name, records):
        with open(self.path(name), "w", encoding="utf-8") as f:
            for r in records:
                f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
        return self.path(name)

    def run_tool(self, *args):
        return subprocess.run([sys.executable, TOOL, *args], capture_output=True,
                              text=True)

    def expected_ids(self, texts, eot):
        out, lengths = [], []
        for t in texts:
            ids = self.tok.encode(t, add_special_tokens=False).ids + [eot]
            out += ids
            lengths.append(len(ids))
        return out, lengths

    def test_jsonl_to_indexed_dataset_and_flat_file(self):
        src = self.jsonl("docs.jsonl", [{"text": d, "id": i} for i, d in enumerate(DOCS)])
        r = self.run_tool("--tokenizer", self.model, "--output-prefix",
                          self.path("corpus"),
                          "--flat", src)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("4 documents (1 empty skipped)", r.stdout)
        self.assertIn("as uint16", r.stdout)
        version, code, lengths, pointers, documents = read_index(self.path("corpus.idx"))
        self.assertEqual(version, 1)
        self.assertEqual(code, 8)  # uint16
        ids, want_lengths = self.expected_ids([d for d in DOCS if d], self.eot)
        self.assertEqual(lengths, want_lengths)
        self.assertEqual(pointers, [2 * sum(want_lengths[:i]) for i in range(4)])
        self.assertEqual(documents, [0, 1, 2, 3, 4])
        with open(self.path("corpus.bin"), "rb") as f:
            bin_ids = list(array.array("H", f.read()))
        self.assertEqual(bin_ids, ids)
        self.assertEqual(sum(1 for i in bin_ids if i == self.eot), 4)
        # The documents decode back to their text.
        first = bin_ids[:lengths[0] - 1]
        self.assertEqual(self.tok.decode(first), DOCS[0])
        with open(self.path("corpus.u16"), "rb") as f, open(self.path("corpus.bin"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertFalse([n for n in os.listdir(self.dir) if n.endswith(".tmp")])

    def test_json_key_text_lines_and_eot_sources(self):
        src = self.jsonl("body.jsonl", [{"body": "one two three"}, {"body": "four"}])
        lines = self.path("lines.txt")
        with open(lines, "w") as f:
            f.write("the old ship\n\nthe red fox\n")
        # An explicit --eot-id, a key, lines as documents, both inputs in order.
        r = self.run_tool("--tokenizer", os.path.join(self.model, "tokenizer.json"),
                          "--output-prefix", self.path("k"), "--json-key", "body",
                          "--text-docs", "line", "--eot-id", "3", src, lines)
        self.assertEqual(r.returncode, 0, r.stderr)
        _, _, lengths, _, documents = read_index(self.path("k.idx"))
        ids, want = self.expected_ids(["one two three", "four", "the old ship",
                                       "the red fox"], 3)
        self.assertEqual(lengths, want)
        with open(self.path("k.bin"), "rb") as f:
            self.assertEqual(list(array.array("H", f.read())), ids)
        # tokenizer_config.json's eos_token wins over the special-token names.
        with open(os.path.join(self.model, "tokenizer_config.json"), "w") as f:
            json.dump({"eos_token": {"content": "<|endoftext|>"}}, f)
        r = self.run_tool("--tokenizer", self.model, "--output-prefix", self.path("c"),
                          "--json-key", "body", src)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("tokenizer_config.json eos_token '<|endoftext|>'", r.stdout)

    def test_ids_beyond_uint16_pick_int32_or_are_refused(self):
        # A word-level vocabulary with an id past 65535.
        tok = Tokenizer(models.WordLevel({"[UNK]": 0, "small": 1, "big": 70000,
                                          "<|endoftext|>": 2}, unk_token="[UNK]"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.add_special_tokens(["<|endoftext|>"])
        big = os.path.join(self.dir, "big")
        os.makedirs(big)
        tok.save(os.path.join(big, "tokenizer.json"))
        src = self.jsonl("big.jsonl", [{"text": "small small"}, {"text": "small big"}])
        r = self.run_tool("--tokenizer", big, "--output-prefix", self.path("b"), src)
        self.assertEqual(r.returncode, 0, r.stderr)
        _, code, lengths, pointers, _ = read_index(self.path("b.idx"))
        self.assertEqual(code, 4)  # int32
        self.assertEqual(pointers, [0, 12])
        with open(self.path("b.bin"), "rb") as f:
            self.assertEqual(list(array.array("i", f.read())), [1, 1, 2, 1, 70000, 2])
        r = self.run_tool("--tokenizer", big, "--output-prefix", self.path("b16"),
                          "--dtype", "uint16", src)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{src}:2: id 70000 does not fit --dtype uint16 (0..65535)", r.stderr)
        self.assertFalse([n for n in os.listdir(self.dir) if n.startswith("b16")])

    def test_bad_input_is_one_clear_line(self):
        cases = [
            ([self.jsonl("nokey.jsonl", [{"text": "fine"}, {"content": "x"}])],
             "nokey.jsonl:2: no key 'text' (keys: content)"),
            ([self.jsonl("notstr.jsonl", [{"text": 5}])],
             "notstr.jsonl:1: 'text' is a JSON int, not a string"),
            ([self.jsonl("broken.jsonl", ['{"text": "a"', ])],
             "broken.jsonl:1: not JSON"),
            ([self.jsonl("empty.jsonl", [])], "no documents in"),
            ([self.jsonl("blank.jsonl", [{"text": "  "}])],
             "(1 empty ones skipped)"),
            ([self.path("missing.jsonl")], "missing.jsonl: no such file"),
        ]
        for inputs, message in cases:
            r = self.run_tool("--tokenizer", self.model, "--output-prefix",
                              self.path("bad"), *inputs)
            self.assertEqual(r.returncode, 2, (message, r.stdout, r.stderr))
            self.assertTrue(r.stderr.startswith("prepare_data: error: "), r.stderr)
            self.assertIn(message, r.stderr)
            self.assertEqual(r.stderr.count("\n"), 1, r.stderr)
            self.assertFalse([n for n in os.listdir(self.dir) if n.startswith("bad")])
        # No end-of-text token anywhere: --eot-id is asked for.
        plain = os.path.join(self.dir, "plain")
        train_tokenizer(plain, special=("[PAD]",))
        r = self.run_tool("--tokenizer", plain, "--output-prefix", self.path("p"),
                          self.jsonl("p.jsonl", [{"text": "hi"}]))
        self.assertEqual(r.returncode, 2)
        self.assertIn("no end-of-text token among the tokenizer's special tokens ([PAD]",
                      r.stderr)
        r = self.run_tool("--tokenizer", plain, "--output-prefix", self.path("p"),
                          "--eot-id", "100000", self.path("p.jsonl"))
        self.assertEqual(r.returncode, 2)
        self.assertIn("--eot-id 100000 is not an id of the tokenizer", r.stderr)
        r = self.run_tool("--tokenizer", self.dir, "--output-prefix", self.path("p"),
                          self.path("p.jsonl"))
        self.assertIn("--tokenizer: no tokenizer.json at", r.stderr)


if __name__ == "__main__":
    unittest.main()
