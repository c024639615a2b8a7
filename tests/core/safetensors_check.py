#!/usr/bin/env python3
"""An independent reader of the safetensors format (standard library only).

Usage: safetensors_check.py FILE [EXPECTED.f32 EXPECTED.json]

Checks the layout the format prescribes: an 8-byte little-endian header size,
a JSON header (padded with spaces), F32 tensors whose data_offsets tile the
data section exactly, shapes that match the byte counts, and string-only
__metadata__. With EXPECTED files (raw float32 values and a JSON list of
[name, shape] in the same order), also checks that every tensor holds exactly
those values. Prints a summary; exits non-zero with the reason otherwise.
"""
import array
import json
import struct
import sys


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def read(path):
    data = open(path, "rb").read()
    if len(data) < 8:
        fail("%s: shorter than 8 bytes" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        fail("%s: header size %d past the end" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        fail("__metadata__ must map strings to strings")
    body = data[8 + n:]
    spans = []
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            fail("%s: dtype %s" % (name, entry["dtype"]))
        begin, end = entry["data_offsets"]
        count = 1
        for d in entry["shape"]:
            count *= d
        if end - begin != 4 * count:
            fail("%s: %d bytes for shape %s" % (name, end - begin, entry["shape"]))
        spans.append((begin, end, name))
    spans.sort()
    at = 0
    for begin, end, name in spans:
        if begin != at:
            fail("%s starts at %d, expected %d" % (name, begin, at))
        at = end
    if at != len(body):
        fail("tensors cover %d bytes, the data section has %d" % (at, len(body)))
    return header, metadata, body


def main():
    header, metadata, body = read(sys.argv[1])
    checked = 0
    if len(sys.argv) == 4:
        expected = array.array("f")
        expected.frombytes(open(sys.argv[2], "rb").read())
        if sys.byteorder != "little":
            expected.byteswap()
        index = json.load(open(sys.argv[3]))
        if sorted(name for name, _ in index) != sorted(header):
            fail("tensor names differ from the expected ones")
        at = 0
        for name, shape in index:
            entry = header[name]
            if entry["shape"] != shape:
                fail("%s: shape %s, expected %s" % (name, entry["shape"], shape))
            count = (entry["data_offsets"][1] - entry["data_offsets"][0]) // 4
            got = array.array("f")
            got.frombytes(body[entry["data_offsets"][0]:entry["data_offsets"][1]])
            if sys.byteorder != "little":
                got.byteswap()
            if got != expected[at:at + count]:
                fail("%s: values differ from the trained weights" % name)
            at += count
            checked += 1
        if at != len(expected):
            fail("expected %d values, the file holds %d" % (len(expected), at))
    print("OK: %d tensors, %d bytes of data, %d compared, metadata %s"
          % (len(header), len(body), checked, sorted(metadata)))


if __name__ == "__main__":
    main()
