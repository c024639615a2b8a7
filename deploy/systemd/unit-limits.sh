#!/usr/bin/env bash
# Prints the MemoryMax= and TasksMax= lines of strongholdd.service for the
# flags in CONF (a strongholdd flag file) on this host, one per line;
# deploy/install.sh writes them into the installed unit. Why these numbers:
# the comment above them in strongholdd.service and docs/security.md.
#
#   MemoryMax = --host_memory_budget + 4 GiB, or 90% of RAM without a budget
#   TasksMax  = CPUs (LibTorch's intra-op threads)
#             + --optimizer_threads (0: one per CPU)
#             + 2 x CPUs (io_uring workers) + 512 (gRPC, metrics, jobs)
#
# Usage: deploy/systemd/unit-limits.sh CONF [CPUS]   (CPUS: default this host's)
set -euo pipefail

die() { printf 'unit-limits: error: %s\n' "$*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 CONF [CPUS]"
conf=$1
cpus=${2:-$(getconf _NPROCESSORS_ONLN)}
[ -r "$conf" ] || die "$conf: cannot read"
[[ "$cpus" =~ ^[1-9][0-9]*$ ]] || die "CPUS must be a positive integer, got $cpus"

# The last --NAME=VALUE line of the flag file, as abseil reads it (empty if none).
flag() { sed -n "s/^[[:space:]]*--$1=\(.*\)$/\1/p" "$conf" | tail -n 1 | tr -d '[:space:]'; }

# A size as strongholdd reads one (core/util/size.h): bytes, or a decimal
# number with KiB MiB GiB TiB KB MB GB TB.
bytes() {
  awk -v s="$1" 'BEGIN {
    m[""] = 1; m["B"] = 1; m["KiB"] = 2^10; m["MiB"] = 2^20; m["GiB"] = 2^30; m["TiB"] = 2^40
    m["KB"] = 1e3; m["MB"] = 1e6; m["GB"] = 1e9; m["TB"] = 1e12
    if (!match(s, /^[0-9]+(\.[0-9]+)?/)) exit 1
    unit = substr(s, RLENGTH + 1)
    if (!(unit in m)) exit 1
    printf "%.0f\n", substr(s, 1, RLENGTH) * m[unit] }'
}

budget=$(flag host_memory_budget)
budget_bytes=$(bytes "${budget:-0}") ||
  die "$conf: --host_memory_budget=$budget is not a size (bytes, or a number with KiB MiB GiB TiB or KB MB GB TB)"
optimizer_threads=$(flag optimizer_threads)
optimizer_threads=${optimizer_threads:-0}
[[ "$optimizer_threads" =~ ^[0-9]+$ ]] ||
  die "$conf: --optimizer_threads=$optimizer_threads is not a non-negative integer"
[ "$optimizer_threads" -gt 0 ] || optimizer_threads=$cpus

if [ "$budget_bytes" -eq 0 ]; then
  echo "MemoryMax=90%"
else
  echo "MemoryMax=$((budget_bytes + 4 * 1024 * 1024 * 1024))"
fi
echo "TasksMax=$((cpus + optimizer_threads + 2 * cpus + 512))"
