#!/usr/bin/env python3
"""Writes a GPT2LMHeadModel directory as Hugging Face shards it (config.json,
model-0000k-of-0000n.safetensors, model.safetensors.index.json), with
python3's standard library only: a model of any size without torch.

The weights are deterministic and small (|w| <= 0.02; LayerNorm weights 1,
biases 0), the layout and names those of transformers' GPT-2 (Conv1D
weights [in, out]). A tensor goes to the next shard once the current one
holds --shard_bytes.

  make_hf_gpt2.py OUT --layers 24 --hidden 256 --heads 4 --positions 64 \
      --vocab 512 [--shard_bytes N]
"""
import argparse
import json
import os
import random
import struct

DTYPE_BYTES = 4  # F32


def tensors(layers, hidden, positions, vocab):
    """(name, shape, kind) in the order GPT-2 checkpoints list them."""
    out = [("transformer.wte.weight", [vocab, hidden], "w"),
           ("transformer.wpe.weight", [positions, hidden], "w")]
    for i in range(layers):
        p = f"transformer.h.{i}."
        out += [
            (p + "ln_1.weight", [hidden], "one"),
            (p + "ln_1.bias", [hidden], "zero"),
            (p + "attn.c_attn.weight", [hidden, 3 * hidden], "w"),
            (p + "attn.c_attn.bias", [3 * hidden], "zero"),
            (p + "attn.c_proj.weight", [hidden, hidden], "w"),
            (p + "attn.c_proj.bias", [hidden], "zero"),
            (p + "ln_2.weight", [hidden], "one"),
            (p + "ln_2.bias", [hidden], "zero"),
            (p + "mlp.c_fc.weight", [hidden, 4 * hidden], "w"),
            (p + "mlp.c_fc.bias", [4 * hidden], "zero"),
            (p + "mlp.c_proj.weight", [4 * hidden, hidden], "w"),
            (p + "mlp.c_proj.bias", [hidden], "zero"),
        ]
    out += [("transformer.ln_f.weight", [hidden], "one"),
            ("transformer.ln_f.bias", [hidden], "zero")]
    return out


def values(kind, count, pattern):
    """`count` little-endian F32 values of `kind`."""
    if kind == "one":
        return struct.pack("<f", 1.0) * count
    if kind == "zero":
        return bytes(DTYPE_BYTES * count)
    # A prime-length random block, repeated: no row equals its neighbour.
    reps = count // (len(pattern) // DTYPE_BYTES) + 1
    return (pattern * reps)[:DTYPE_BYTES * count]


def write_shard(path, entries):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in entries:
        n = DTYPE_BYTES
        for d in shape:
            n *= d
        header[name] = {"dtype": "F32", "shape": shape,
                        "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return header, text, offset


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("out")
    a.add_argument("--layers", type=int, required=True)
    a.add_argument("--hidden", type=int, required=True)
    a.add_argument("--heads", type=int, required=True)
    a.add_argument("--positions", type=int, required=True)
    a.add_argument("--vocab", type=int, required=True)
    a.add_argument("--shard_bytes", type=int, default=0,
                   help="0: two shards of about half the model each")
    a.add_argument("--seed", type=int, default=1)
    args = a.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    pattern = struct.pack("<4099f",
                          *(rng.uniform(-0.02, 0.02) for _ in range(4099)))

    all_tensors = tensors(args.layers, args.hidden, args.positions, args.vocab)
    sizes = []
    for _, shape, _ in all_tensors:
        n = DTYPE_BYTES
        for d in shape:
            n *= d
        sizes.append(n)
    total = sum(sizes)
    limit = args.shard_bytes or (total + 1) // 2
    shards, current, held = [], [], 0
    for t, n in zip(all_tensors, sizes):
        if current and held + n > limit:
            shards.append(current)
            current, held = [], 0
        current.append(t)
        held += n
    shards.append(current)

    weight_map = {}
    for k, entries in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        _, text, _ = write_shard(name, entries)
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for tname, shape, kind in entries:
                count = 1
                for d in shape:
                    count *= d
                f.write(values(kind, count, pattern))
                weight_map[tname] = name
    with open(os.path.join(args.out, "model.safetensors.index.json"),
              "w") as f:
        json.dump({"metadata": {"total_size": total},
                   "weight_map": weight_map}, f, indent=2)
    config = {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "activation_function": "gelu_new",
        "n_embd": args.hidden,
        "n_head": args.heads,
        "n_inner": None,
        "n_layer": args.layers,
        "n_positions": args.positions,
        "vocab_size": args.vocab,
        "layer_norm_epsilon": 1e-05,
        "tie_word_embeddings": True,
        "scale_attn_weights": True,
        "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False,
        "attn_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "resid_pdrop": 0.0,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "dtype": "float32",
    }
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(total)


if __name__ == "__main__":
    main()
