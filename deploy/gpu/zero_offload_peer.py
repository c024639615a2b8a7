#!/usr/bin/env python3
"""DeepSpeed ZeRO-Offload on the GPT that core/tools/gpu_bench.cc benchmarks (the peer).

deploy/gpu/check.sh runs this after gpu_bench, on the same GPU, with the same
model (--layers/--hidden/--heads/--seq-len/--batch/--vocab) as gpu_bench's
"largest resident" run, and prints one row in gpu_bench's table format plus a
CSV line. The model is algorithm.md section 4's: learned token and position
embeddings, pre-LayerNorm blocks (LN -> QKV -> causal attention -> projection
-> residual -> LN -> MLP h->4h GeLU(tanh) 4h->h -> residual), final LayerNorm,
output head tied to the token embedding; fp32 weights (as gpu_bench), every
block's forward recomputed in backward (activation checkpointing per layer,
as STRONGHOLD does).

DeepSpeed: ZeRO stage 2 with `offload_optimizer: cpu` (DeepSpeedCPUAdam in
AdamW mode, JIT-built on first use), gradient clipping 1.0, one micro-batch
per step. The training dtype is fp32 unless --dtype bf16 (DeepSpeed then keeps
bf16 weights on the GPU and fp32 masters on the host, as ZeRO-Offload users
run it).

  zero_offload_peer.py --layers 15 --steps 5            # on a GPU
  zero_offload_peer.py --dry-run                         # on a CPU: builds the model, checks the config
  zero_offload_peer.py --cpu --layers 2 --hidden 64 --heads 4 --seq-len 32 --vocab 256 --batch 2
                                                         # on a CPU: the whole DeepSpeed path, tiny

On failure it prints `peer: not run: <reason>` and exits 3.
"""
import argparse
import math
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, default=15)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--vocab", type=int, default=50304)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="first steps not counted")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (default: off, as gpu_bench)")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="dense peak for MFU (0: none)")
    p.add_argument("--resident-samples-per-s", type=float, default=0.0,
                   help="gpu_bench's RESIDENT samples/s on this model, for the ratio column")
    p.add_argument("--stronghold-samples-per-s", type=float, default=0.0,
                   help="gpu_bench's STRONGHOLD samples/s on this model, for STRONGHOLD / ZeRO-Offload")
    p.add_argument("--cpu", action="store_true",
                   help="train on the CPU (DeepSpeed's CPU accelerator, gloo): a smoke test of the "
                        "whole path where there is no GPU; use a small model")
    p.add_argument("--dry-run", action="store_true",
                   help="CPU: build the model (at --layers), run one tiny forward/backward, "
                        "check the DeepSpeed config; no DeepSpeed engine")
    return p.parse_args()


def parameters(a):
    h = a.hidden
    return a.layers * (12 * h * h + 13 * h) + (a.vocab + a.seq_len) * h + 2 * h


def model_flops_per_step(a):
    # Megatron's formula (algorithm.md section 4), as gpu_bench reports.
    b, s, l, h, v = a.batch, a.seq_len, a.layers, a.hidden, a.vocab
    return 72.0 * b * s * l * h * h * (1 + s / (6.0 * h) + v / (12.0 * l * h))


def build_model(a, torch):
    nn = torch.nn
    F = torch.nn.functional
    from torch.utils.checkpoint import checkpoint

    class Block(nn.Module):
        def __init__(self, h, heads):
            super().__init__()
            self.heads = heads
            self.ln1 = nn.LayerNorm(h)
            self.qkv = nn.Linear(h, 3 * h)
            self.proj = nn.Linear(h, h)
            self.ln2 = nn.LayerNorm(h)
            self.fc1 = nn.Linear(h, 4 * h)
            self.fc2 = nn.Linear(4 * h, h)

        def forward(self, x):
            b, s, h = x.shape
            qkv = self.qkv(self.ln1(x)).view(b, s, 3, self.heads, h // self.heads)
            q, k, v = qkv.permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            y = x + self.proj(att.transpose(1, 2).reshape(b, s, h))
            return y + self.fc2(F.gelu(self.fc1(self.ln2(y)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(a.vocab, a.hidden)
            self.wpe = nn.Embedding(a.seq_len, a.hidden)
            self.blocks = nn.ModuleList(Block(a.hidden, a.heads) for _ in range(a.layers))
            self.lnf = nn.LayerNorm(a.hidden)
            for m in self.modules():  # GPT-2's initialisation, as core/model/gpt_init.cc
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear):
                    nn.init.zeros_(m.bias)

        def forward(self, tokens, targets):
            x = self.wte(tokens) + self.wpe.weight[: tokens.shape[1]]
            for blk in self.blocks:
                x = checkpoint(blk, x, use_reentrant=False)  # recomputed in backward
            logits = self.lnf(x) @ self.wte.weight.t()  # tied head
            return F.cross_entropy(logits.view(-1, logits.shape[-1]).float(), targets.reshape(-1))

    return GPT()


def ds_config(a):
    c = {
        "train_batch_size": a.batch,
        "train_micro_batch_size_per_gpu": a.batch,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": 1.0,
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
        "optimizer": {"type": "AdamW",
                      "params": {"lr": 1e-4, "betas": [0.9, 0.95], "eps": 1e-8,
                                 "weight_decay": 0.1}},
        "zero_optimization": {
            "stage": 2,
            "offload_optimizer": {"device": "cpu", "pin_memory": True},
            "contiguous_gradients": True,
            "overlap_comm": True,
            "reduce_bucket_size": 200_000_000,
            "allgather_bucket_size": 200_000_000,
        },
    }
    if a.dtype == "bf16":
        c["bf16"] = {"enabled": True}
    return c


def make_engine(a, torch, deepspeed):
    t0 = time.time()
    model = build_model(a, torch)
    if a.dtype == "bf16":
        model = model.to(torch.bfloat16)
    engine, _, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(),
                                           config=ds_config(a))
    print(f"peer: {a.dtype} engine ready in {time.time() - t0:.1f} s (optimizer "
          f"{type(engine.optimizer).__name__} over "
          f"{type(getattr(engine.optimizer, 'optimizer', None)).__name__})", flush=True)
    return engine


def row(name, step_s, a, peak):
    sps = a.batch / step_s
    tflops = model_flops_per_step(a) / step_s / 1e12
    ratio = f"{a.resident_samples_per_s and sps / a.resident_samples_per_s:9.3f}x" \
        if a.resident_samples_per_s else f"{'-':>10}"
    mfu = f"{100 * tflops / peak:5.1f}%" if peak else "    -"
    # gpu_bench's columns: method, window, step_s, samples/s, opt_wait, TFLOPS, MFU, vs RESID., GPU peak
    return f"{name:<28} {'-':>6} {step_s:9.3f} {sps:9.3f} {'-':>9} {tflops:9.2f} {mfu:>6} {ratio}"


def main():
    a = parse_args()
    try:
        import torch
    except Exception as e:  # noqa: BLE001
        print(f"peer: not run: import torch: {e}")
        return 3
    if a.dry_run:
        return dry_run(a, torch)
    if not a.cpu and not torch.cuda.is_available():
        print("peer: not run: no CUDA device (on a CPU: --dry-run, or --cpu with a small model)")
        return 3
    dev = "cpu" if a.cpu else "cuda"
    sync = (lambda: None) if a.cpu else torch.cuda.synchronize
    os.environ["DS_ACCELERATOR"] = dev
    for k, v in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29517"}.items():
        os.environ.setdefault(k, v)
    try:
        import deepspeed
    except Exception as e:  # noqa: BLE001
        print(f"peer: not run: import deepspeed: {type(e).__name__}: {e}")
        return 3
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    peak = a.peak_tflops
    print(f"peer: DeepSpeed {deepspeed.__version__}, torch {torch.__version__}, "
          f"{'CPU' if a.cpu else torch.cuda.get_device_name(0)}; ZeRO-2 + offload_optimizer cpu (DeepSpeedCPUAdam), "
          f"{a.dtype}{' (TF32 on)' if a.tf32 else ' (TF32 off)'}, activation checkpointing per layer; "
          f"{a.layers} layers, hidden {a.hidden}, {a.heads} heads, seq {a.seq_len}, batch {a.batch}, "
          f"vocab {a.vocab}: {parameters(a) / 1e9:.3f}B parameters", flush=True)
    try:
        deepspeed.init_distributed(dist_backend="gloo" if a.cpu else "nccl", verbose=False)
    except Exception as e:  # noqa: BLE001
        print(f"peer: not run: init_distributed: {type(e).__name__}: {e}"[:600])
        return 3
    try:
        try:
            engine = make_engine(a, torch, deepspeed)
        except Exception as e:  # noqa: BLE001
            if a.dtype != "fp32":
                raise
            # ZeRO-Offload is normally run in mixed precision; if this
            # DeepSpeed refuses fp32, measure bf16 and say so.
            print(f"peer: fp32 refused at initialize ({type(e).__name__}: "
                  f"{str(e).strip()[:300]}); retrying in bf16", flush=True)
            a.dtype = "bf16"
            if not a.cpu:
                torch.cuda.empty_cache()
            engine = make_engine(a, torch, deepspeed)
        gen = torch.Generator(device=dev).manual_seed(1)
        times = []
        for step in range(a.steps):
            tokens = torch.randint(0, a.vocab, (a.batch, a.seq_len + 1), device=dev, generator=gen)
            sync()
            t = time.perf_counter()
            loss = engine(tokens[:, :-1], tokens[:, 1:])
            engine.backward(loss)
            engine.step()
            sync()
            times.append(time.perf_counter() - t)
            print(f"peer: step {step + 1}/{a.steps} {times[-1]:.3f} s loss {loss.detach().item():.4f}",
                  flush=True)
        measured = times[a.warmup:] or times
        step_s = sum(measured) / len(measured)
    except Exception as e:  # noqa: BLE001
        msg = str(e).strip().splitlines()
        print(f"peer: not run: {type(e).__name__}: {msg[-1] if msg else ''}"[:600])
        return 3
    if a.dtype != "fp32":
        peak = 0  # --peak-tflops is gpu_bench's fp32 peak: no MFU for bf16
    peak_gib = 0.0 if a.cpu else torch.cuda.max_memory_allocated() / 2**30
    print(row(f"ZeRO-Offload ({a.dtype})", step_s, a, peak) + f" {peak_gib:7.2f} GiB")
    sps = a.batch / step_s
    if a.stronghold_samples_per_s:
        print(f"STRONGHOLD / ZeRO-Offload: {a.stronghold_samples_per_s / sps:.2f}x "
              f"(target 2x or more)")
    print(f"csv,zero_offload_{a.dtype},{a.layers},{parameters(a)},-,{step_s:.4f},{sps:.4f},"
          f"{model_flops_per_step(a) / step_s / 1e12:.3f},"
          f"{(100 * model_flops_per_step(a) / step_s / 1e12 / peak) if peak else 0:.2f},"
          f"{peak_gib * 2**30:.0f}")
    return 0


def dry_run(a, torch):
    t0 = time.time()
    model = build_model(a, torch)
    n = sum(p.numel() for p in model.parameters())
    want = parameters(a)
    ok = n == want
    print(f"peer dry run: {a.layers} layers, hidden {a.hidden}: {n} parameters "
          f"(algorithm.md's P = {want}: {'match' if ok else 'MISMATCH'}), built in {time.time() - t0:.1f} s")
    # One forward/backward at a tiny sequence and batch, on the CPU.
    tokens = torch.randint(0, a.vocab, (1, min(a.seq_len, 16) + 1))
    loss = model(tokens[:, :-1], tokens[:, 1:])
    loss.backward()
    loss = loss.detach()
    grads = sum(p.grad is not None for p in model.parameters())
    print(f"peer dry run: loss {loss.item():.4f} (ln V = {math.log(a.vocab):.4f}), "
          f"{grads} of {len(list(model.parameters()))} tensors got gradients")
    ok = ok and math.isfinite(loss.item()) and grads == len(list(model.parameters()))
    try:
        import deepspeed
        from deepspeed.runtime.config import DeepSpeedConfig
        from deepspeed.ops.op_builder import CPUAdamBuilder
        cfg = DeepSpeedConfig(ds_config(a))
        print(f"peer dry run: DeepSpeed {deepspeed.__version__}: config ok (ZeRO stage "
              f"{cfg.zero_optimization_stage}, offload_optimizer "
              f"{cfg.zero_config.offload_optimizer.device}, clip {cfg.gradient_clipping}); "
              f"cpu_adam JIT-buildable here: {CPUAdamBuilder().is_compatible(verbose=False)}")
    except Exception as e:  # noqa: BLE001
        print(f"peer dry run: deepspeed: {type(e).__name__}: {e}")
        ok = False
    print("peer dry run:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
