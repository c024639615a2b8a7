"""Times DeepSpeed's CPU Adam (DeepSpeedCPUAdam, AdamW mode) like adamw_bench.

Usage (needs the deepspeed and torch Python packages and a C++ compiler:
DeepSpeed JIT-builds its cpu_adam extension with ninja on first use):

    python3 core/tools/deepspeed_adam_bench.py [PARAMS] [THREADS]

PARAMS defaults to 64Mi. THREADS is a thread count N (runs 1..N) or a
comma-separated list (1,8,16); by default 1..the CPUs this process may use. Each
thread count runs in a fresh child process with OMP_NUM_THREADS set before
torch is imported: the extension parallelises with its own OpenMP runtime,
which torch.set_num_threads() does not reach.

Prints the same columns as adamw_bench: best and median params/s and
effective GB/s at 28 bytes per parameter (fp32 p, g, m, v read; p, m, v
written), after one warm-up step.
"""

import os
import subprocess
import sys
import time

REPEATS = 5


def child(count: int, threads: int) -> None:
    import torch
    from deepspeed.ops.adam import DeepSpeedCPUAdam

    torch.manual_seed(0)
    param = torch.nn.Parameter(0.5 + torch.rand(count, dtype=torch.float32))
    param.grad = torch.rand(count, dtype=torch.float32) - 0.5
    opt = DeepSpeedCPUAdam([param], lr=1e-4, betas=(0.9, 0.95), eps=1e-8,
                           weight_decay=0.1, adamw_mode=True)
    opt.step()  # warm-up: allocates m and v
    seconds = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        opt.step()
        seconds.append(time.perf_counter() - start)
    seconds.sort()
    best, median = seconds[0], seconds[len(seconds) // 2]
    print("%-34s %7d %10.1f %10.1f %9.2f %9.2f %9.3f" %
          ("DeepSpeedCPUAdam (adamw_mode)", threads, count / best / 1e6,
           count / median / 1e6, 28 * count / best / 1e9,
           28 * count / median / 1e9, best), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), int(sys.argv[3]))
        return
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 64 << 20
    arg = sys.argv[2] if len(sys.argv) > 2 else str(len(os.sched_getaffinity(0)))
    sweep = ([int(t) for t in arg.split(",") if t] if "," in arg else
             list(range(1, int(arg) + 1)))
    print("params: %d; %d timed steps after 1 warm-up" % (count, REPEATS))
    print("%-34s %7s %10s %10s %9s %9s %9s" %
          ("configuration", "threads", "Mparam/s", "(median)", "GB/s",
           "(median)", "best s"), flush=True)
    for threads in sweep:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        subprocess.run([sys.executable, __file__, "--child", str(count),
                        str(threads)], env=env, check=True)


if __name__ == "__main__":
    main()
