#!/usr/bin/env python3
"""Compares a Hugging Face model directory with reference weights (standard
library only: CI has no numpy or torch).

Usage: hf_compare.py MODEL_DIR REFERENCE.safetensors [TOLERANCE]

MODEL_DIR is read through model.safetensors.index.json (every shard it
names); every tensor of REFERENCE must be there with its shape, and within
TOLERANCE (default 1e-4) of the reference relative to the tensor's largest
magnitude. The key bias (the middle third of attn.c_attn.bias) has a
gradient of exactly zero in exact arithmetic, so training moves it by
rounding noise only: it must stay below 1e-5 in both instead.
Exits non-zero naming the first tensor that differs.
"""
import array
import json
import os
import struct
import sys


def read(path):
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            sys.exit("FAIL: %s: %s is %s, not F32" % (path, name, e["dtype"]))
        begin, end = e["data_offsets"]
        values = array.array("f")
        values.frombytes(data[8 + n + begin:8 + n + end])
        if sys.byteorder != "little":
            values.byteswap()
        out[name] = (e["shape"], values)
    return out


def main():
    model_dir, reference = sys.argv[1], sys.argv[2]
    tolerance = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
    index = json.load(open(os.path.join(model_dir,
                                        "model.safetensors.index.json")))
    ours = {}
    for shard in sorted(set(index["weight_map"].values())):
        ours.update(read(os.path.join(model_dir, shard)))
    want = read(reference)
    for name, (shape, values) in sorted(want.items()):
        if name not in ours:
            sys.exit("FAIL: %s is missing from %s" % (name, model_dir))
        got_shape, got = ours[name]
        if got_shape != shape:
            sys.exit("FAIL: %s has shape %s, expected %s" % (name, got_shape, shape))
        key = range(0)
        if name.endswith("attn.c_attn.bias"):
            key = range(len(values) // 3, 2 * len(values) // 3)
        scale = max(abs(v) for i, v in enumerate(values) if i not in key)
        diff = max(abs(a - b) for i, (a, b) in enumerate(zip(got, values))
                   if i not in key)
        if diff > tolerance * scale:
            sys.exit("FAIL: %s differs by %g, more than %g x its scale %g"
                     % (name, diff, tolerance, scale))
        for i in key:
            if abs(got[i]) > 1e-5 or abs(values[i]) > 1e-5:
                sys.exit("FAIL: %s: key bias %d is %g (reference %g)"
                         % (name, i, got[i], values[i]))
    extra = sorted(set(ours) - set(want))
    if extra:
        sys.exit("FAIL: %s holds tensors the reference has not: %s"
                 % (model_dir, extra))
    print("OK: %d tensors within %g of %s" % (len(want), tolerance, reference))


if __name__ == "__main__":
    main()
