// io_bench: sequential and random read/write GB/s of the NVMe tier's block
// devices (io_uring and the pread fallback) next to fio's, in one run, on one
// file system, at the same block size, queue depth and O_DIRECT. Not a test:
// it prints figures (docs/benchmarks.md, "NVMe tier (issue 5)").
//
//   bazel run //storage:io_bench -- [--dir=/mnt/nvme] [--file_size=1GiB]
//       [--block_size=1MiB] [--queue_depth=32] [--repeat=3] [--direct=true]
//
// Each backend gets its own file of --file_size bytes in --dir (default: a
// fresh temporary directory under /tmp, removed afterwards). Every figure is
// the median of --repeat passes over the whole file, the passes of the three
// contenders interleaved so that drift in the disk hits all of them alike.
// fio runs with ioengine=io_uring, fixedbufs and registerfiles, like ours.
#include <glog/logging.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "storage/aligned_buffer.h"
#include "storage/block_device_factory.h"
#include "storage/crc32c.h"

ABSL_FLAG(std::string, dir, "",
          "directory for the test files (default: a new one under /tmp)");
ABSL_FLAG(int64_t, file_size, int64_t{1} << 30,
          "bytes per backend's file (each pass moves all of it)");
ABSL_FLAG(int64_t, block_size, int64_t{1} << 20, "bytes per request");
ABSL_FLAG(int, queue_depth, 32, "requests in flight");
ABSL_FLAG(int, repeat, 3, "passes per figure; the median is printed");
ABSL_FLAG(bool, direct, true, "O_DIRECT (bypass the page cache)");
ABSL_FLAG(bool, huge_pages, true,
          "our buffers on transparent huge pages, as the NVMe tier allocates "
          "them (fio's are on 4 KiB pages); false compares like with like");
ABSL_FLAG(std::string, fio, "fio", "the fio binary; empty to skip fio");

namespace stronghold::storage {
namespace {

enum class Pattern { kSequential, kRandom };

struct Workload {
  const char* name;
  IoOp op;
  Pattern pattern;
  const char* fio_rw;
};

constexpr Workload kWorkloads[] = {
    {"seq write", IoOp::kWrite, Pattern::kSequential, "write"},
    {"seq read", IoOp::kRead, Pattern::kSequential, "read"},
    {"rand write", IoOp::kWrite, Pattern::kRandom, "randwrite"},
    {"rand read", IoOp::kRead, Pattern::kRandom, "randread"},
};

double Seconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2]
                      : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// One of our devices, with queue_depth registered block buffers.
struct Contender {
  std::string name;
  std::unique_ptr<BlockDevice> device;
  AlignedBuffer buffers;
};

// GB/s (1e9 bytes) of one pass over the whole device in `order` (block
// indices): all requests in one batch; the device keeps queue_depth in flight.
double RunPass(Contender& c, const Workload& w,
               const std::vector<int64_t>& order, int64_t block, int depth) {
  std::vector<IoRequest> requests;
  requests.reserve(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    requests.push_back({w.op, order[i] * block, block,
                        c.buffers.data() + (i % depth) * block});
  }
  const double start = Seconds();
  absl::StatusOr<IoTicket> ticket = c.device->Submit(requests);
  absl::Status status = ticket.ok() ? c.device->Wait(*ticket) : ticket.status();
  const double elapsed = Seconds() - start;
  if (!status.ok()) {
    LOG(FATAL) << c.name << " " << w.name << ": " << status;
  }
  return static_cast<double>(order.size() * block) / elapsed / 1e9;
}

std::string FioCommand(const std::string& fio, const std::string& file,
                       const Workload& w, int64_t size, int64_t block,
                       int depth, bool direct) {
  return absl::StrFormat(
      "%s --name=io_bench --filename=%s --size=%d --bs=%d --iodepth=%d "
      "--direct=%d --ioengine=io_uring --fixedbufs=1 --registerfiles=1 --rw=%s "
      "--numjobs=1 --output-format=json",
      fio, file, size, block, depth, direct ? 1 : 0, w.fio_rw);
}

// fio's bandwidth for the workload in GB/s, or a negative value on failure.
double RunFio(const std::string& command, const Workload& w) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string out;
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) out.append(chunk, n);
  if (pclose(pipe) != 0) {
    LOG(ERROR) << "fio failed: " << command << "\n" << out;
    return -1;
  }
  // "read" : { ... "bw_bytes" : N, ...}: take the section for our direction.
  // (Not the bare word: the job options contain "rw" : "write".)
  const std::string section =
      w.op == IoOp::kRead ? "\"read\" : {" : "\"write\" : {";
  size_t at = out.find(section);
  if (at != std::string::npos) at = out.find("\"bw_bytes\"", at);
  if (at != std::string::npos) at = out.find(':', at);
  int64_t bw = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(out.substr(at + 1, out.find(',', at) - at - 1), &bw)) {
    LOG(ERROR) << "cannot find the bandwidth in fio's output:\n" << out;
    return -1;
  }
  return bw / 1e9;
}

// "ext4 on /dev/vda" for the file system holding `dir`.
std::string FileSystemOf(const std::string& dir) {
  std::ifstream mounts("/proc/mounts");
  std::string device, mount_point, type, rest, best_device, best_type;
  size_t best = 0;
  const std::string canonical = std::filesystem::canonical(dir).string();
  while (mounts >> device >> mount_point >> type &&
         std::getline(mounts, rest)) {
    const bool under =
        canonical.compare(0, mount_point.size(), mount_point) == 0 &&
        (canonical.size() == mount_point.size() || mount_point == "/" ||
         canonical[mount_point.size()] == '/');
    if (under && mount_point.size() >= best) {
      best = mount_point.size();
      best_device = device;
      best_type = type;
    }
  }
  return best_type.empty() ? "unknown file system"
                           : absl::StrCat(best_type, " on ", best_device);
}

double CrcGBps() {
  AlignedBuffer data(64 << 20);
  std::memset(data.data(), 0x5A, data.size());
  uint32_t crc = 0;
  const double start = Seconds();
  for (int i = 0; i < 8; ++i)
    crc = crc32c::Extend(crc, data.data(), data.size());
  const double elapsed = Seconds() - start;
  CHECK_NE(crc, 1u);  // keep the loop
  return 8.0 * data.size() / elapsed / 1e9;
}

int Main() {
  const int64_t block = absl::GetFlag(FLAGS_block_size);
  const int depth = absl::GetFlag(FLAGS_queue_depth);
  const int64_t size = absl::GetFlag(FLAGS_file_size) / block * block;
  const int repeat = std::max(1, absl::GetFlag(FLAGS_repeat));
  const bool direct = absl::GetFlag(FLAGS_direct);
  const std::string fio = absl::GetFlag(FLAGS_fio);
  std::string dir = absl::GetFlag(FLAGS_dir);
  const bool own_dir = dir.empty();
  if (own_dir) {
    char templ[] = "/tmp/io_bench-XXXXXX";
    CHECK(mkdtemp(templ) != nullptr) << "mkdtemp: " << strerror(errno);
    dir = templ;
  }
  const int64_t blocks = size / block;

  std::vector<Contender> contenders;
  for (const auto& [name, backend] :
       {std::pair<std::string, FileBackend>{"io_uring", FileBackend::kIoUring},
        {"pread", FileBackend::kPread}}) {
    FileBlockDeviceOptions options({dir}, size);
    options.block_bytes = block;
    options.queue_depth = depth;
    options.direct_io = direct;
    options.backend = backend;
    options.file_name = absl::StrCat("io_bench-", name);
    auto device = OpenFileBlockDevice(options);
    if (!device.ok()) {
      std::fprintf(stderr, "io_bench: %s: %s\n", name.c_str(),
                   std::string(device.status().message()).c_str());
      return 1;
    }
    Contender c{name, *std::move(device),
                AlignedBuffer(depth * block, /*alignment=*/4096,
                              absl::GetFlag(FLAGS_huge_pages)
                                  ? AlignedBuffer::HugePages::kIfLarge
                                  : AlignedBuffer::HugePages::kNever)};
    std::memset(c.buffers.data(), 0xA5, c.buffers.size());
    const absl::Status registered =
        c.device->RegisterBuffers({{c.buffers.data(), c.buffers.size()}});
    if (!registered.ok()) LOG(WARNING) << registered;
    std::printf("# %s\n", c.device->Describe().c_str());
    contenders.push_back(std::move(c));
  }
  const bool with_fio =
      !fio.empty() && system((fio + " --version >/dev/null 2>&1").c_str()) == 0;
  const std::string fio_file = absl::StrCat(dir, "/io_bench-fio.dat");
  std::printf(
      "# io_bench: %s (%s), %s per file, %s blocks, queue depth %d, %s, median "
      "of %d\n",
      dir.c_str(), FileSystemOf(dir).c_str(),
      absl::StrCat(size >> 20, " MiB").c_str(),
      absl::StrCat(block >> 10, " KiB").c_str(), depth,
      direct ? "O_DIRECT" : "buffered", repeat);
  if (with_fio) {
    std::printf("# fio: %s\n", FioCommand(fio, fio_file, kWorkloads[0], size,
                                          block, depth, direct)
                                   .c_str());
  } else {
    std::printf("# fio: not found (apt-get install fio); column left empty\n");
  }

  std::vector<int64_t> sequential(blocks);
  std::iota(sequential.begin(), sequential.end(), 0);
  std::mt19937_64 rng(1);
  std::printf("%-11s %12s %12s %12s %14s\n", "GB/s", "io_uring", "pread", "fio",
              "io_uring/fio");
  for (const Workload& w : kWorkloads) {
    std::vector<double> ours[2], theirs;
    for (int r = 0; r < repeat; ++r) {
      std::vector<int64_t> order = sequential;
      if (w.pattern == Pattern::kRandom)
        std::shuffle(order.begin(), order.end(), rng);
      // Rotate who goes first: a disk with a cache (a VM's host) favours
      // whoever reads what was written most recently.
      for (int k = 0; k < 3; ++k) {
        const int c = (r + k) % 3;
        if (c < 2) {
          ours[c].push_back(RunPass(contenders[c], w, order, block, depth));
        } else if (with_fio) {
          const double gbps = RunFio(
              FioCommand(fio, fio_file, w, size, block, depth, direct), w);
          if (gbps > 0) theirs.push_back(gbps);
        }
      }
    }
    const double uring = Median(ours[0]);
    const double fio_gbps = Median(theirs);
    std::printf(
        "%-11s %12.2f %12.2f %12s %14s\n", w.name, uring, Median(ours[1]),
        fio_gbps > 0 ? absl::StrFormat("%.2f", fio_gbps).c_str() : "-",
        fio_gbps > 0 ? absl::StrFormat("%.2f", uring / fio_gbps).c_str() : "-");
  }
  std::printf("# CRC32C (%s): %.1f GB/s on one core\n",
              crc32c::IsHardwareAccelerated() ? "SSE4.2" : "table", CrcGBps());
  contenders.clear();  // removes the devices' files
  std::filesystem::remove(fio_file);
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace stronghold::storage

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  absl::ParseCommandLine(argc, argv);
  return stronghold::storage::Main();
}
