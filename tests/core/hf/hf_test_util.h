// What the Hugging Face tests share: the fixtures (tests/fixtures/hf, made
// by make_fixtures.py with transformers), a model directory loaded into
// plain buffers, and copies of a fixture directory to damage.
#ifndef STRONGHOLD_TESTS_CORE_HF_HF_TEST_UTIL_H_
#define STRONGHOLD_TESTS_CORE_HF_HF_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/checkpoint/checkpoint.h"
#include "core/hf/hf_import.h"

namespace stronghold::core {

// tests/fixtures/hf/<name>, relative to the test's runfiles (whose files
// are symlinks, which the importer refuses: load from a CopyFixture).
std::string HfFixture(const std::string& name);

// Opens the model directory at `path`.
absl::StatusOr<HfModelDir> OpenHfDir(const std::string& path);

// A model directory's weights in our buffers.
struct LoadedModel {
  ModelConfig model;
  std::vector<BufferLayout> layouts;
  std::vector<std::vector<float>> weights;  // one per layout
  std::vector<CheckpointBuffer> Buffers();  // params only
};
absl::StatusOr<LoadedModel> LoadHfDir(const std::string& path,
                                      const RequestedModel& requested = {});

// A copy of the fixture directory `name` in $TEST_TMPDIR/<copy>.
std::string CopyFixture(const std::string& name, const std::string& copy);

}  // namespace stronghold::core

#endif  // STRONGHOLD_TESTS_CORE_HF_HF_TEST_UTIL_H_
