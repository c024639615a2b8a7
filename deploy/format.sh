#!/usr/bin/env bash
# The C++ tree's formatting, by Debian's clang-format and .clang-format
# (Google style, 80 columns).
# Usage: ./deploy/format.sh          rewrite every file in place
#        ./deploy/format.sh --check  change nothing; list each file whose
#                                    formatting differs and exit 1
# Files: every tracked .cc/.h outside third_party/ (build shims only).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

command -v clang-format >/dev/null ||
  { echo "format: clang-format is missing (./deploy/install-deps.sh installs it)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.cc' '*.h' | grep -v '^third_party/')

if [ "${1:-}" != "--check" ]; then
  clang-format -i --style=file "${files[@]}"
  echo "format: ${#files[@]} files formatted"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  clang-format --style=file --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -ne 0 ]; then
  printf 'format: not formatted: %s\n' "${bad[@]}" >&2
  echo "format: ${#bad[@]} of ${#files[@]} files differ from clang-format; run ./deploy/format.sh" >&2
  exit 1
fi
echo "format: ${#files[@]} files formatted as .clang-format says"
