#!/usr/bin/env python3
"""Checks checkpoint directories the way docs/checkpoints.md describes them,
sharing no code with the daemon: manifest.json's own digest, then the size
and SHA-256 of every file it lists.

Usage: checkpoint_check.py DIR...   (exit 0 when every one is complete)
"""
import hashlib
import json
import os
import sys

KEY = '"manifest_sha256": "'


def check(directory):
    text = open(os.path.join(directory, "manifest.json"), "rb").read().decode()
    at = text.index(KEY) + len(KEY)
    recorded = text[at:at + 64]
    zeroed = text[:at] + "0" * 64 + text[at + 64:]
    if hashlib.sha256(zeroed.encode()).hexdigest() != recorded:
        return "manifest.json: its own digest does not match"
    manifest = json.loads(text)
    name = os.path.basename(os.path.normpath(directory))
    # A fetched copy may live under any name; the daemon's are step-NNNNNN.
    if name.startswith("step-") and name != "step-%06d" % manifest["step"]:
        return "step %d does not match the directory" % manifest["step"]
    names = [f["name"] for f in manifest["files"]]
    for required in ("model.safetensors", "optimizer.safetensors"):
        if required not in names:
            return "manifest does not list " + required
    for f in manifest["files"]:
        path = os.path.join(directory, f["name"])
        if not os.path.isfile(path):
            return f["name"] + ": missing"
        data = open(path, "rb").read()
        if len(data) != f["bytes"]:
            return "%s: %d bytes, manifest says %d" % (f["name"], len(data), f["bytes"])
        if hashlib.sha256(data).hexdigest() != f["sha256"]:
            return f["name"] + ": SHA-256 differs from the manifest"
    return None


def main():
    bad = 0
    for directory in sys.argv[1:]:
        problem = check(directory)
        print("%s: %s" % (directory, problem or "complete"))
        bad += problem is not None
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
