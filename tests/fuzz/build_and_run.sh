#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/Makefile: Debian's clang, ASan and
# UBSan) and runs each one: first every input in tests/fuzz/<target>/regressions/
# once, then fuzzing for FUZZ_SECONDS from its seed corpus (tests/fuzz/<target>/corpus/
# and the regressions). Prints one line per target, "fuzz/<target> PASSED" or
# "fuzz/<target> FAILED" (deploy/test.sh counts them), and for a failure the
# input that reproduces it and the command to rerun it. Exits 1 if any target
# crashed, leaked, timed out or reported undefined behaviour.
#
# Usage: tests/fuzz/build_and_run.sh [TARGET...]     (default: every target)
#        tests/fuzz/build_and_run.sh --seeds         (rewrite the seed corpora)
# Environment:
#   FUZZ_SECONDS  fuzzing time per target (default 30; 0 = regressions only)
#   FUZZ_OUT      build and scratch directory (default .fuzz, git-ignored)
#   FUZZ_JOBS     parallel compile jobs (default 2)
# docs/fuzzing.md explains the targets and how to add a regression input.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
OUT=$(mkdir -p "${FUZZ_OUT:-.fuzz}" && cd "${FUZZ_OUT:-.fuzz}" && pwd)
ALL_TARGETS=(json safetensors manifest dataset megatron_index fault_spec spec)

build() {
  make --no-print-directory -f tests/fuzz/Makefile ROOT="$ROOT" OUT="$OUT/build" \
    -j"${FUZZ_JOBS:-2}" "$@" >"$OUT/build.log" 2>&1
}

if [ "${1:-}" = "--seeds" ]; then
  build "$OUT/build/bin/make_seeds" || { cat "$OUT/build.log"; exit 1; }
  exec "$OUT/build/bin/make_seeds"
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

echo "==> fuzz: building ${targets[*]} with clang++-14 -fsanitize=fuzzer,address,undefined"
if ! build $(printf "$OUT/build/bin/%s_fuzzer " "${targets[@]}"); then
  tail -n 40 "$OUT/build.log"
  for t in "${targets[@]}"; do echo "fuzz/$t FAILED (build, see $OUT/build.log)"; done
  exit 1
fi

# Any sanitizer report is fatal (the objects are built with
# -fno-sanitize-recover); leaks are reported at the end of each input.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
# Per input: 10 s, 2 GiB, 64 KiB (libFuzzer's defaults are 20 min and 4 KiB).
LIBFUZZER_FLAGS=(-timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1)

# Known open bugs, by target: a crash, UB report or timeout whose first
# project frame is in this file stops that target's fuzzing without failing
# the run (its reproducer is printed).
# (None today: the planner's overflow and its slow MaxTrainableLayers were
# fixed, their inputs are in tests/fuzz/spec/regressions/.)
declare -A KNOWN=()

# The first source file of the project in a crash report's frames.
first_project_frame() {
  grep -E "runtime error:|#[0-9]+ 0x[0-9a-f]+ in " "$1" \
    | grep -m 1 -oE "$ROOT/(core|server|storage)/[^ :]+" | sed "s|^$ROOT/||"
}

# Prints the reproducer of a failed run from its log.
report() {
  local t=$1 log=$2 input=$3
  grep -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|FUZZ_CHECK failed|==ERROR" \
    "$log" | head -n 5 | sed 's/^/    /'
  [ -n "$input" ] || input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
  echo "    reproducer: ${input:-unknown (see $log)}"
  echo "    rerun:      $OUT/build/bin/${t}_fuzzer ${input:-INPUT}"
  echo "    log:        $log"
}

failed=0
for t in "${targets[@]}"; do
  bin="$OUT/build/bin/${t}_fuzzer"
  dir="tests/fuzz/$t"
  scratch="$OUT/run/$t"
  rm -rf "$scratch"
  mkdir -p "$scratch/corpus" "$scratch/artifacts"
  mapfile -t regressions < <(find "$dir/regressions" -type f ! -name 'README*' 2>/dev/null | sort)

  # 1. Every regression input once; each is a crash that was fixed.
  ok=1
  note=""
  for input in "${regressions[@]}"; do
    if ! "$bin" "${LIBFUZZER_FLAGS[@]}" "$input" >"$scratch/regression.log" 2>&1; then
      echo "fuzz/$t FAILED (regression input $input)"
      report "$t" "$scratch/regression.log" "$input"
      ok=0
      break
    fi
  done

  # 2. Fuzzing from the seeds and the regressions, into a scratch corpus (the
  #    committed corpus is not changed).
  if [ $ok = 1 ] && [ "$SECONDS_PER_TARGET" -gt 0 ]; then
    cp "$dir"/corpus/* "$scratch/corpus/" 2>/dev/null
    for input in "${regressions[@]}"; do cp "$input" "$scratch/corpus/"; done
    dict=()
    [ -f "$dir/dictionary" ] && dict=(-dict="$dir/dictionary")
    if ! "$bin" "${LIBFUZZER_FLAGS[@]}" "${dict[@]}" -max_total_time="$SECONDS_PER_TARGET" \
        -artifact_prefix="$scratch/artifacts/" "$scratch/corpus" >"$scratch/fuzz.log" 2>&1; then
      frame=$(first_project_frame "$scratch/fuzz.log")
      if [ -n "${KNOWN[$t]:-}" ] && [ "$frame" = "${KNOWN[$t]}" ]; then
        echo "fuzz/$t: a known bug in $frame stopped fuzzing early (not counted as a failure):"
        report "$t" "$scratch/fuzz.log" ""
        note="; stopped early at the known bug in $frame"
      else
        echo "fuzz/$t FAILED (first project frame: ${frame:-none})"
        report "$t" "$scratch/fuzz.log" ""
        ok=0
      fi
    fi
  fi
  if [ $ok = 1 ]; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/fuzz.log" 2>/dev/null | tail -n 1)
    echo "fuzz/$t PASSED (${#regressions[@]} regression inputs, ${runs:-0} runs in at most ${SECONDS_PER_TARGET} s$note)"
  else
    failed=1
  fi
done
exit $failed
