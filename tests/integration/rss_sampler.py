#!/usr/bin/env python3
"""Samples a process's resident memory (/proc/PID/status VmRSS) every
--interval seconds until it exits or this sampler gets SIGTERM/SIGINT, then
writes one JSON object to OUT: the first sample (kB), the peak sampled
VmRSS, the last VmHWM (the kernel's own peak, which sampling cannot miss:
reset it first with `echo 5 > /proc/PID/clear_refs`), the sample count and,
with --trace, every (seconds, kB) sample.

  rss_sampler.py PID OUT [--interval 0.05] [--trace]
"""
import argparse
import json
import signal
import time


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def main():
    a = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    a.add_argument("pid", type=int)
    a.add_argument("out")
    a.add_argument("--interval", type=float, default=0.05)
    a.add_argument("--trace", action="store_true")
    args = a.parse_args()
    stop = []
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.append(True))
    start = time.monotonic()
    first = peak = hwm = None
    samples = []
    while not stop:
        try:
            rss = status_kb(args.pid, "VmRSS")
            hwm = status_kb(args.pid, "VmHWM")
        except (OSError, KeyError):
            break  # the process is gone
        first = rss if first is None else first
        peak = rss if peak is None else max(peak, rss)
        samples.append((round(time.monotonic() - start, 3), rss))
        time.sleep(args.interval)
    result = {"first_kb": first, "peak_rss_kb": peak, "hwm_kb": hwm,
              "samples": len(samples)}
    if args.trace:
        result["trace"] = samples
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
