#!/usr/bin/env bash
# Writes OUT.cc defining BuiltinHardwareProfileJson()
# (core/plan/builtin_hardware_profiles.h) with the text of each JSON file,
# named after the file without ".json", sorted by name. Used by the genrule
# //core/plan:builtin_hardware_profiles_cc and by deploy/gpu/check.sh.
# Usage: embed.sh OUT.cc FILE.json...
set -euo pipefail
out=$1
shift
{
  echo '// Generated from deploy/hardware/*.json by deploy/hardware/embed.sh.'
  echo '#include "core/plan/builtin_hardware_profiles.h"'
  echo 'namespace stronghold::core {'
  echo 'const std::vector<std::pair<std::string, std::string>>&'
  echo 'BuiltinHardwareProfileJson() {'
  echo '  static const auto* kProfiles ='
  echo '      new std::vector<std::pair<std::string, std::string>>{'
  for f in $(printf '%s\n' "$@" | sort); do
    if grep -q ')hwjson"' "$f"; then
      echo "embed.sh: $f contains the raw string delimiter" >&2
      exit 1
    fi
    printf '          {"%s", R"hwjson(' "$(basename "$f" .json)"
    cat "$f"
    echo ')hwjson"},'
  done
  echo '      };'
  echo '  return *kProfiles;'
  echo '}'
  echo '}  // namespace stronghold::core'
} >"$out"
