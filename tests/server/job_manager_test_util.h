// What the in-process JobManager tests share: a fresh state directory, a
// tiny job and a manager on the host device.
#ifndef STRONGHOLD_TESTS_SERVER_JOB_MANAGER_TEST_UTIL_H_
#define STRONGHOLD_TESTS_SERVER_JOB_MANAGER_TEST_UTIL_H_

#include <memory>
#include <string>

#include "server/auth/principal.h"
#include "server/job_manager.h"
#include "stronghold/v1/stronghold.pb.h"

namespace stronghold::server {

// $TEST_TMPDIR/name (or /tmp/name), emptied.
std::string StateDir(const std::string& name);

// The principal the tests submit jobs as: an ordinary unix user.
inline const Principal kTestUser{.name = "uid:1000", .uid = 1000, .gid = 1000};

// A 1-layer, hidden-32 job of `steps` steps: a fraction of a second.
stronghold::v1::JobSpec Tiny(int steps);

// A JobManager over `dir` with one optimizer thread (fails the test if it
// cannot be created).
std::unique_ptr<JobManager> Manager(const std::string& dir);

}  // namespace stronghold::server

#endif  // STRONGHOLD_TESTS_SERVER_JOB_MANAGER_TEST_UTIL_H_
