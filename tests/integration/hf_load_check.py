#!/usr/bin/env python3
"""Loads an exported directory with transformers (the opt-in live test:
needs torch and transformers) and checks what docs/finetune.md promises:
no missing, unexpected or mismatched keys, the weights as exported, and it
generates.

Usage: hf_load_check.py MODEL_DIR [REFERENCE.safetensors]
"""
import sys

import torch
import transformers
from safetensors.torch import load_file


def main():
    model_dir = sys.argv[1]
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, output_loading_info=True, dtype=torch.float32)
    problems = {k: v for k, v in info.items() if v}
    if problems:
        sys.exit("FAIL: loading %s: %s" % (model_dir, problems))
    print("loaded %s as %s: no missing, unexpected or mismatched keys"
          % (model_dir, type(model).__name__))
    if len(sys.argv) > 2:
        want = load_file(sys.argv[2])
        state = model.state_dict()
        for name, tensor in want.items():
            scale = tensor.abs().max().item()
            diff = (state[name] - tensor).abs().max().item()
            if name.endswith("attn.c_attn.bias"):
                third = tensor.numel() // 3
                keep = torch.ones(tensor.numel(), dtype=torch.bool)
                keep[third:2 * third] = False
                scale = tensor[keep].abs().max().item()
                diff = (state[name] - tensor)[keep].abs().max().item()
            if diff > 1e-4 * scale:
                sys.exit("FAIL: %s differs by %g (scale %g)" % (name, diff, scale))
        print("every weight within 1e-4 of", sys.argv[2])
    model.eval()
    prompt = torch.tensor([[1, 2, 3, 4]])
    out = model.generate(prompt, max_new_tokens=8, do_sample=False,
                         pad_token_id=0)
    if out.shape != (1, 12):
        sys.exit("FAIL: generate returned shape %s" % (tuple(out.shape),))
    print("generates:", out.tolist())


if __name__ == "__main__":
    main()
