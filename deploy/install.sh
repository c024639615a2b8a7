#!/usr/bin/env bash
# Installs strongholdd and strongholdctl on this host as a systemd service:
#   PREFIX/bin/{strongholdd,strongholdctl}   (default PREFIX /opt/stronghold)
#   PREFIX/lib/   the non-Debian libraries they load (LibTorch, CUDA runtime),
#                 found through an RPATH of $ORIGIN/../lib set with patchelf
#   PREFIX/share/doc/stronghold/observability.md
#   /usr/local/bin/strongholdctl -> PREFIX/bin/strongholdctl
#   /etc/systemd/system/strongholdd.service  (MemoryMax= and TasksMax= from
#                 the flag file's budgets: deploy/systemd/unit-limits.sh)
#   /etc/sysusers.d/stronghold.conf           (user and group stronghold)
#   /etc/stronghold/strongholdd.conf          (the flags; kept if present)
#   /var/lib/stronghold/{data,ssd}            (the default --data_root and --ssd_root)
# and with --monitoring, for a host running Prometheus and Grafana:
#   /etc/prometheus/strongholdd-alerts.yml
#   /etc/grafana/provisioning/{dashboards,datasources}/strongholdd.yml
#   /var/lib/grafana/dashboards/stronghold/strongholdd.json
#
# Build first: bazel build //server:strongholdd //client:strongholdctl
# The Debian runtime libraries (gRPC, protobuf, Abseil, glog, prometheus-cpp,
# libsystemd, OpenSSL) must be installed on the host; the script checks that
# every library resolves.
#
# Usage: deploy/install.sh [--destdir DIR] [--prefix DIR] [--from DIR]
#                          [--monitoring] [--enable]
#   --destdir DIR  install under DIR (staging, packaging, tests); no users are
#                  created and systemd is not told
#   --from DIR     where server/strongholdd and client/strongholdctl are
#                  (default: the workspace's bazel-bin)
#   --enable       systemctl enable --now strongholdd afterwards
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DESTDIR=""
PREFIX=/opt/stronghold
FROM="$ROOT/bazel-bin"
MONITORING=0
ENABLE=0

step() { printf '==> %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --destdir) DESTDIR=$(realpath -m "$2"); shift 2 ;;
    --prefix) PREFIX=$2; shift 2 ;;
    --from) FROM=$2; shift 2 ;;
    --monitoring) MONITORING=1; shift ;;
    --enable) ENABLE=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
case "$PREFIX" in /*) ;; *) die "--prefix must be absolute, got $PREFIX" ;; esac
[ "$ENABLE" = 0 ] || [ -z "$DESTDIR" ] || die "--enable and --destdir do not go together"
[ -n "$DESTDIR" ] || [ "$(id -u)" -eq 0 ] || die "run as root (or stage with --destdir DIR)"

BINARIES=("$FROM/server/strongholdd" "$FROM/client/strongholdctl")
for b in "${BINARIES[@]}"; do
  [ -x "$b" ] || die "$b not found: build first (bazel build //server:strongholdd //client:strongholdctl)"
done
command -v patchelf >/dev/null || die "patchelf not found (apt-get install patchelf)"

BIN="$DESTDIR$PREFIX/bin"
LIB="$DESTDIR$PREFIX/lib"
system_lib() { case "$1" in /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) return 0 ;; *) return 1 ;; esac; }

step "binaries -> $BIN"
install -d -m 0755 "$BIN" "$LIB"
for b in "${BINARIES[@]}"; do
  install -m 0755 "$(readlink -f "$b")" "$BIN/$(basename "$b")"
done

# The binaries find LibTorch through an RPATH into the build tree; copy every
# library that does not come from Debian next to them instead.
step "libraries outside the system's -> $LIB"
for b in "${BINARIES[@]}"; do
  ldd "$(readlink -f "$b")" | awk '$2 == "=>" && $3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  system_lib "$lib" && continue
  printf '    %s\n' "$lib"
  install -m 0755 "$(readlink -f "$lib")" "$LIB/$(basename "$lib")"
done
# DT_RPATH (not RUNPATH) also applies to the libraries' own dependencies,
# e.g. libtorch_cpu.so's libcudart.so.13.
for b in "${BINARIES[@]}"; do
  patchelf --force-rpath --set-rpath '$ORIGIN/../lib' "$BIN/$(basename "$b")"
done

step "checking that every library resolves"
for b in "${BINARIES[@]}"; do
  installed="$BIN/$(basename "$b")"
  out=$(ldd "$installed")
  if grep -q 'not found' <<<"$out"; then
    die "$installed: $(grep 'not found' <<<"$out" | tr -s ' \t' ' ' | paste -sd,) (install the Debian runtime packages of gRPC, protobuf, Abseil, glog, prometheus-cpp, libsystemd and OpenSSL)"
  fi
  while read -r lib; do
    system_lib "$lib" && continue
    case "$(readlink -f "$lib")" in "$(readlink -f "$LIB")"/*) ;; *) die "$installed loads $lib from outside $LIB" ;; esac
  done < <(awk '$2 == "=>" && $3 ~ /^\// {print $3}' <<<"$out")
done

step "docs, units, user, configuration"
install -D -m 0644 "$ROOT/docs/observability.md" "$DESTDIR$PREFIX/share/doc/stronghold/observability.md"
install -d -m 0755 "$DESTDIR/usr/local/bin"
ln -sfn "$PREFIX/bin/strongholdctl" "$DESTDIR/usr/local/bin/strongholdctl"
unit="$DESTDIR/etc/systemd/system/strongholdd.service"
install -D -m 0644 "$ROOT/deploy/systemd/strongholdd.service" "$unit"
# The per-GPU template (docs/distributed.md): strongholdd@N.service.
install -D -m 0644 "$ROOT/deploy/systemd/strongholdd@.service" \
  "$DESTDIR/etc/systemd/system/strongholdd@.service"
sed -i "s#/opt/stronghold/#$PREFIX/#g" "$unit"
install -D -m 0644 "$ROOT/deploy/systemd/stronghold.sysusers" "$DESTDIR/etc/sysusers.d/stronghold.conf"
conf="$DESTDIR/etc/stronghold/strongholdd.conf"
if [ -e "$conf" ]; then
  printf '    keeping %s (the shipped one is deploy/systemd/strongholdd.conf)\n' "$conf"
else
  install -D -m 0644 "$ROOT/deploy/systemd/strongholdd.conf" "$conf"
fi
# MemoryMax= and TasksMax= from the flag file's budgets and this host's CPUs;
# after changing the budget, run deploy/install.sh again (or systemctl edit).
limits=$(bash "$ROOT/deploy/systemd/unit-limits.sh" "$conf") || die "cannot derive the unit's limits"
while read -r line; do
  sed -i "s/^${line%%=*}=.*/$line/" "$unit"
  printf '    %s\n' "$line"
done <<<"$limits"

if [ "$MONITORING" = 1 ]; then
  step "Prometheus alert rules and Grafana provisioning"
  install -D -m 0644 "$ROOT/deploy/prometheus/strongholdd-alerts.yml" "$DESTDIR/etc/prometheus/strongholdd-alerts.yml"
  install -D -m 0644 "$ROOT/deploy/grafana/provisioning/dashboards/strongholdd.yml" \
    "$DESTDIR/etc/grafana/provisioning/dashboards/strongholdd.yml"
  install -D -m 0644 "$ROOT/deploy/grafana/provisioning/datasources/strongholdd.yml" \
    "$DESTDIR/etc/grafana/provisioning/datasources/strongholdd.yml"
  install -D -m 0644 "$ROOT/deploy/grafana/dashboards/strongholdd.json" \
    "$DESTDIR/var/lib/grafana/dashboards/stronghold/strongholdd.json"
  printf '    add to /etc/prometheus/prometheus.yml: rule_files: [strongholdd-alerts.yml] and the\n'
  printf '    strongholdd scrape job of deploy/prometheus/prometheus.yml\n'
fi

if [ -n "$DESTDIR" ]; then
  install -d -m 0750 "$DESTDIR/var/lib/stronghold/data" "$DESTDIR/var/lib/stronghold/ssd"
  step "staged under $DESTDIR"
  exit 0
fi

if command -v systemd-sysusers >/dev/null; then
  step "creating user and group stronghold"
  systemd-sysusers /etc/sysusers.d/stronghold.conf
  # The unit's StateDirectory= creates them too; here so that token files
  # can be put in place before the first start.
  install -d -o stronghold -g stronghold -m 0750 /var/lib/stronghold
  install -d -o stronghold -g stronghold -m 0750 /var/lib/stronghold/data /var/lib/stronghold/ssd
else
  die "systemd-sysusers not found: create user and group stronghold by hand"
fi
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if [ "$ENABLE" = 1 ]; then
    step "starting strongholdd"
    systemctl enable --now strongholdd.service
  else
    step "done: systemctl enable --now strongholdd"
  fi
else
  step "done (systemd is not running here; start $PREFIX/bin/strongholdd --flagfile=/etc/stronghold/strongholdd.conf by hand)"
fi
