#!/usr/bin/env python3
"""Turns text or JSONL into token files that strongholdd trains on (docs/data.md).

    prepare_data.py --tokenizer MODEL_DIR --output-prefix OUT/corpus INPUT...

Each input is a JSONL file (".jsonl"/".json": one JSON object per line, its
text under --json-key) or a text file (one document per file, or per line
with --text-docs line). Every document is tokenized with the model
directory's tokenizer.json (the Hugging Face `tokenizers` package, without
its special tokens such as a BOS) and followed by the end-of-text id, which
separates documents in the token stream.

Writes a Megatron-LM indexed dataset: OUT/corpus.bin (the ids) and
OUT/corpus.idx (MMIDIDX version 1: one sequence per document), which the
daemon trains on with `data.source = OUT/corpus.idx`; with --flat also the
flat token file of the same ids (OUT/corpus.u16 or .u32). The ids are
uint16 when every id the tokenizer can produce fits, else int32 (--dtype
forces one).

The end-of-text id is --eot-id, else the model directory's
tokenizer_config.json "eos_token", else the first of the usual end-of-text
tokens (<|endoftext|>, <|end_of_text|>, </s>, <eos>, <|im_end|>) that the
tokenizer has as a special token.

Exit status 0, or 2 with one line "prepare_data: error: ..." naming the
input, line and limit for bad input (a missing key, an empty input, an id
beyond the dtype, no end-of-text token).
"""

import argparse
import array
import json
import os
import struct
import sys

# Megatron's DType codes (megatron/core/datasets/indexed_dataset.py).
DTYPES = {
    "uint16": (8, "H", 2, 0xFFFF),
    "int32": (4, "i", 4, 0x7FFFFFFF),
}
INDEX_MAGIC = b"MMIDIDX\x00\x00"
EOT_NAMES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|im_end|>")
BATCH = 256  # documents per encode_batch call


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


def load_tokenizer(path):
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise InputError(
            "the Python package 'tokenizers' is missing "
            "(deploy/install-deps.sh installs it: pip install tokenizers)")
    file = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise InputError(f"--tokenizer: no tokenizer.json at '{file}'")
    try:
        return Tokenizer.from_file(file)
    except Exception as e:  # the Rust side raises plain Exceptions
        raise InputError(f"--tokenizer: cannot load '{file}': {e}")


def end_of_text_id(tokenizer, model_dir, eot_id):
    """The id that ends every document, and where it came from."""
    vocab = max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1
    if eot_id is not None:
        if not 0 <= eot_id < vocab:
            raise InputError(
                f"--eot-id {eot_id} is not an id of the tokenizer (0..{vocab - 1})")
        return eot_id, "--eot-id"
    config = os.path.join(model_dir, "tokenizer_config.json") if os.path.isdir(
        model_dir) else None
    if config and os.path.isfile(config):
        with open(config, encoding="utf-8") as f:
            eos = json.load(f).get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str):
            token_id = tokenizer.token_to_id(eos)
            if token_id is None:
                raise InputError(
                    f"{config}: eos_token {eos!r} is not in tokenizer.json: pass --eot-id")
            return token_id, f"{config} eos_token {eos!r}"
    special = {t.content for t in tokenizer.get_added_tokens_decoder().values()
               if t.special}
    for name in EOT_NAMES:
        if name in special:
            return tokenizer.token_to_id(name), f"special token {name!r}"
    raise InputError(
        "no end-of-text token among the tokenizer's special tokens "
        f"({', '.join(sorted(special)) or 'none'}; looked for "
        f"{', '.join(EOT_NAMES)}): pass --eot-id")


def documents(path, json_key, text_docs):
    """Yields (where, text) for each document of one input."""
    jsonl = path.endswith((".jsonl", ".json"))
    with open(path, encoding="utf-8") as f:
        if not jsonl and text_docs == "file":
            yield path, f.read()
            return
        for number, line in enumerate(f, 1):
            where = f"{path}:{number}"
            if not jsonl:
                yield where, line.rstrip("\n")
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{where}: not JSON: {e.msg} (column {e.colno})")
            if not isinstance(record, dict):
                raise InputError(f"{where}: a JSON {type(record).__name__}, not an object")
            if json_key not in record:
                keys = ", ".join(sorted(record)) or "none"
                raise InputError(f"{where}: no key '{json_key}' (keys: {keys}); "
                                 "choose another with --json-key")
            text = record[json_key]
            if not isinstance(text, str):
                raise InputError(f"{where}: '{json_key}' is a JSON "
                                 f"{type(text).__name__}, not a string")
            yield where, text


def pick_dtype(requested, tokenizer, eot):
    largest = max(max(tokenizer.get_vocab(with_added_tokens=True).values()), eot)
    if requested == "auto":
        return "uint16" if largest <= DTYPES["uint16"][3] else "int32"
    if eot > DTYPES[requested][3]:
        raise InputError(f"the end-of-text id {eot} does not fit --dtype "
                         f"{requested} (at most {DTYPES[requested][3]})")
    return requested


class IndexedWriter:
    """PREFIX.bin and PREFIX.idx, written to temporaries and renamed at the end."""

    def __init__(self, prefix, dtype, flat):
        self.code, self.typecode, self.width, self.limit = DTYPES[dtype]
        self.dtype = dtype
        self.paths = [prefix + ".bin", prefix + ".idx"]
        if flat:
            self.paths.append(prefix + (".u16" if dtype == "uint16" else ".u32"))
        self.files = [open(p + ".tmp", "wb") for p in self.paths[:1] + self.paths[2:]]
        self.lengths = array.array("i")
        self.tokens = 0

    def add(self, where, ids):
        if ids and (max(ids) > self.limit or min(ids) < 0):
            bad = max(ids) if max(ids) > self.limit else min(ids)
            raise InputError(f"{where}: id {bad} does not fit --dtype {self.dtype} "
                             f"(0..{self.limit})")
        if len(ids) > 0x7FFFFFFF:
            raise InputError(f"{where}: {len(ids)} tokens, more than a Megatron "
                             "sequence holds (2^31 - 1)")
        ids = array.array(self.typecode, ids)
        if sys.byteorder == "big":
            ids.byteswap()
        data = ids.tobytes()
        for f in self.files:
            f.write(data)
        self.lengths.append(len(ids))
        self.tokens += len(ids)

    def finish(self):
        for f in self.files:
            f.close()
        n = len(self.lengths)
        pointers = array.array("q", [0] * n)
        at = 0
        for i, length in enumerate(self.lengths):
            pointers[i] = at
            at += length * self.width
        documents = array.array("q", range(n + 1))  # one sequence per document
        lengths = array.array("i", self.lengths)
        if sys.byteorder == "big":
            for a in (pointers, documents, lengths):
                a.byteswap()
        with open(self.paths[1] + ".tmp", "wb") as f:
            f.write(INDEX_MAGIC)
            f.write(struct.pack("<QBQQ", 1, self.code, n, n + 1))
            f.write(lengths.tobytes())
            f.write(pointers.tobytes())
            f.write(documents.tobytes())
        for p in self.paths:
            os.replace(p + ".tmp", p)

    def abandon(self):
        for f in self.files:
            f.close()
        for p in self.paths:
            if os.path.exists(p + ".tmp"):
                os.remove(p + ".tmp")


def prepare(args):
    tokenizer = load_tokenizer(args.tokenizer)
    eot, eot_from = end_of_text_id(tokenizer, args.tokenizer, args.eot_id)
    dtype = pick_dtype(args.dtype, tokenizer, eot)
    for path in args.inputs:
        if not os.path.isfile(path):
            raise InputError(f"{path}: no such file")
    out_dir = os.path.dirname(os.path.abspath(args.output_prefix))
    if not os.path.isdir(out_dir):
        raise InputError(f"--output-prefix: no directory '{out_dir}'")
    writer = IndexedWriter(args.output_prefix, dtype, args.flat)
    skipped = 0
    try:
        batch = []

        def flush():
            encoded = tokenizer.encode_batch([t for _, t in batch],
                                             add_special_tokens=False)
            for (where, _), e in zip(batch, encoded):
                writer.add(where, e.ids + [eot])
            batch.clear()

        for path in args.inputs:
            for where, text in documents(path, args.json_key, args.text_docs):
                if not text.strip():
                    skipped += 1
                    continue
                batch.append((where, text))
                if len(batch) == BATCH:
                    flush()
        flush()
        if not writer.lengths:
            raise InputError(f"no documents in {', '.join(args.inputs)}"
                             + (f" ({skipped} empty ones skipped)" if skipped else ""))
        writer.finish()
    except BaseException:
        writer.abandon()
        raise
    print(f"prepare_data: {len(writer.lengths)} documents ({skipped} empty skipped), "
          f"{writer.tokens} tokens as {dtype}, end-of-text id {eot} ({eot_from})")
    for p in writer.paths:
        print(f"  {p}")


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Tokenize text or JSONL into a Megatron indexed dataset "
                    "(PREFIX.bin + PREFIX.idx) for strongholdd (docs/data.md).")
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help=".jsonl/.json (one object per line) or text files")
    parser.add_argument("--tokenizer", required=True,
                        help="a model directory holding tokenizer.json, or the file")
    parser.add_argument("--output-prefix", required=True,
                        help="writes PREFIX.bin and PREFIX.idx")
    parser.add_argument("--json-key", default="text",
                        help="the field holding each JSONL document's text (default: text)")
    parser.add_argument("--text-docs", choices=("file", "line"), default="file",
                        help="a text input is one document, or one per line (default: file)")
    parser.add_argument("--eot-id", type=int, default=None,
                        help="the end-of-text id (default: from the tokenizer)")
    parser.add_argument("--dtype", choices=("auto", "uint16", "int32"), default="auto",
                        help="the ids' type (default: uint16 when the vocabulary fits)")
    parser.add_argument("--flat", action="store_true",
                        help="also write the flat token file PREFIX.u16 / PREFIX.u32")
    args = parser.parse_args(argv)
    try:
        prepare(args)
    except InputError as e:
        print(f"prepare_data: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
