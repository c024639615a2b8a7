#include "tests/core/hf/hf_test_util.h"

#include <fcntl.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace fs = std::filesystem;

std::string HfFixture(const std::string& name) {
  return absl::StrCat("tests/fixtures/hf/", name);
}

absl::StatusOr<HfModelDir> OpenHfDir(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return absl::NotFoundError(absl::StrCat("no ", path));
  return HfModelDir::Open(std::move(fd), path);
}

std::vector<CheckpointBuffer> LoadedModel::Buffers() {
  std::vector<CheckpointBuffer> out;
  for (size_t i = 0; i < layouts.size(); ++i) {
    out.push_back({.layout = layouts[i], .param = weights[i].data()});
  }
  return out;
}

absl::StatusOr<LoadedModel> LoadHfDir(const std::string& path,
                                      const RequestedModel& requested) {
  ASSIGN_OR_RETURN(HfModelDir dir, OpenHfDir(path));
  LoadedModel m;
  ASSIGN_OR_RETURN(m.model, ResolveHfModel(dir.hf(), requested));
  m.layouts = ModelLayout(m.model);
  for (const BufferLayout& l : m.layouts) {
    // NaN: an element the loader missed shows.
    m.weights.emplace_back(l.count, std::numeric_limits<float>::quiet_NaN());
  }
  RETURN_IF_ERROR(dir.LoadInto(m.model, m.Buffers()));
  return m;
}

std::string CopyFixture(const std::string& name, const std::string& copy) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path dir = fs::path(tmp != nullptr ? tmp : "/tmp") / copy;
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const fs::directory_entry& e : fs::directory_iterator(HfFixture(name))) {
    fs::copy_file(e.path(), dir / e.path().filename());
    fs::permissions(dir / e.path().filename(),
                    fs::perms::owner_read | fs::perms::owner_write,
                    fs::perm_options::add);
  }
  return dir.string();
}

}  // namespace stronghold::core
