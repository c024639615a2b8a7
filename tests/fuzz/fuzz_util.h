// Helpers shared by the libFuzzer targets (tests/fuzz/*/*_fuzzer.cc).
#ifndef STRONGHOLD_TESTS_FUZZ_FUZZ_UTIL_H_
#define STRONGHOLD_TESTS_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace stronghold::fuzz {

// A property of the code under test failed: print it and abort, so that
// libFuzzer keeps the input as a crash like any sanitizer report.
#define FUZZ_CHECK(cond, ...)                                                \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: %s\n", __FILE__, \
                   __LINE__, #cond, ::absl::StrCat(__VA_ARGS__).c_str());    \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

// Writes `bytes` to this process's scratch file (ending in `suffix`) for the
// readers that take a path, and returns its path. libFuzzer runs one input
// at a time, so one file per process and suffix is enough; it is removed
// when the process exits normally. The file is in memory (/dev/shm, or
// $TMPDIR when set) and made anew each time: ext4 flushes a file rewritten
// after truncation on close, which would make every input wait for the disk.
inline std::string WriteScratchFile(absl::string_view bytes,
                                    absl::string_view suffix) {
  const char* tmpdir = std::getenv("TMPDIR");
  const char* dir = tmpdir != nullptr               ? tmpdir
                    : access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                    : "/tmp";
  const std::string path =
      absl::StrCat(dir, "/stronghold-fuzz-", getpid(), suffix);
  std::remove(path.c_str());
  std::FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr, "cannot create ", path);
  FUZZ_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size(),
             "short write ", path);
  FUZZ_CHECK(std::fclose(f) == 0, "cannot close ", path);
  static std::string* last = nullptr;
  if (last == nullptr) {
    last = new std::string(path);
    std::atexit([] { std::remove(last->c_str()); });
  } else if (*last != path) {
    std::remove(last->c_str());
    *last = path;
  }
  return path;
}

}  // namespace stronghold::fuzz

#endif  // STRONGHOLD_TESTS_FUZZ_FUZZ_UTIL_H_
