// The JSON text of deploy/hardware/*.json, embedded at build time by a
// genrule (core/plan/BUILD), so that named profiles resolve without an
// install path. Name = the file's base name without ".json".
#ifndef STRONGHOLD_CORE_PLAN_BUILTIN_HARDWARE_PROFILES_H_
#define STRONGHOLD_CORE_PLAN_BUILTIN_HARDWARE_PROFILES_H_

#include <string>
#include <utility>
#include <vector>

namespace stronghold::core {

// (name, JSON) for each built-in profile, sorted by name.
const std::vector<std::pair<std::string, std::string>>&
BuiltinHardwareProfileJson();

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_PLAN_BUILTIN_HARDWARE_PROFILES_H_
