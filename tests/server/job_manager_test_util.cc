#include "tests/server/job_manager_test_util.h"

#include <cstdlib>
#include <filesystem>

#include "gtest/gtest.h"

namespace stronghold::server {

std::string StateDir(const std::string& name) {
  namespace fs = std::filesystem;
  const char* tmp = std::getenv("TEST_TMPDIR");
  const fs::path p = fs::path(tmp != nullptr ? tmp : "/tmp") / name;
  fs::remove_all(p);
  return p.string();
}

stronghold::v1::JobSpec Tiny(int steps) {
  stronghold::v1::JobSpec spec;
  spec.set_name("tiny");
  spec.mutable_model()->set_layers(1);
  spec.mutable_model()->set_hidden(32);
  spec.mutable_model()->set_heads(2);
  spec.mutable_model()->set_seq_len(16);
  spec.mutable_training()->set_batch(2);
  spec.mutable_training()->set_steps(steps);
  return spec;
}

std::unique_ptr<JobManager> Manager(const std::string& dir) {
  auto m = JobManager::Create({.state_dir = dir, .optimizer_threads = 1});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

}  // namespace stronghold::server
