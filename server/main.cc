// strongholdd: the per-node training daemon. Its flags live here, but for
// the limit and gRPC resource flags (server/limit_flags.cc); docs/daemon.md
// says what each one does.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_posix.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "core/device/device.h"
#include "core/dist/c10d_communicator.h"
#include "core/train/trainer.h"
#include "core/util/status_macros.h"
#include "glog/logging.h"
#include "server/address.h"
#include "server/auth/caller_identity.h"
#include "server/auth/tcp_security.h"
#include "server/auth/unix_listener.h"
#include "server/job_limits.h"
#include "server/job_manager.h"
#include "server/limit_flags.h"
#include "server/metrics.h"
#include "server/metrics_http_server.h"
#include "server/rpc_metrics.h"
#include "server/service.h"
#include "server/startup_checks.h"
#include "server/state_lock.h"
#include "server/systemd_notifier.h"
#include "server/version.h"
#include "storage/fault_spec.h"
#include "storage/uring_block_device.h"

ABSL_FLAG(std::string, socket, "",
          "Unix socket to serve on: PATH, unix:PATH or unix:///PATH (default "
          "$XDG_RUNTIME_DIR/stronghold/strongholdd.sock, or "
          "/run/stronghold/strongholdd.sock)");
ABSL_FLAG(std::string, socket_mode, "0660",
          "Permissions of the unix socket, in octal: who may connect "
          "(docs/security.md)");
ABSL_FLAG(std::string, socket_group, "",
          "Group of the unix socket (name or id; default: the daemon's group)");
ABSL_FLAG(std::string, admin_group, "",
          "Members of this group (and root) may cancel, delete, fetch and "
          "trace every job; others only their own (empty = root only)");
ABSL_FLAG(std::string, listen, "",
          "Optional TCP address host:port, served with TLS (--tls_cert, "
          "--tls_key) and client authentication (--tls_client_ca and/or "
          "--token_file); see --insecure_loopback");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate (chain) of the TCP listener");
ABSL_FLAG(std::string, tls_key, "",
          "PEM private key of --tls_cert (unencrypted)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificates: clients authenticate with a certificate they "
          "signed, whose subject is the client's principal");
ABSL_FLAG(std::string, token_file, "",
          "Bearer tokens accepted on --listen: lines \"<sha256 hex of the "
          "token> <principal>\"");
ABSL_FLAG(bool, insecure_loopback, false,
          "TESTING ONLY: serve --listen as plain TCP without authentication (a "
          "loopback address only; every client is the principal "
          "\"insecure-loopback\")");
ABSL_FLAG(std::string, state_dir, "",
          "Job records and checkpoints (default $STATE_DIRECTORY, or "
          "/var/lib/stronghold)");
ABSL_FLAG(std::string, device, "auto", "Compute device: cpu, cuda:N or auto");
ABSL_FLAG(
    std::string, device_memory_budget, "0",
    "Compute-device memory budget, e.g. 16GiB (0 = the device's capacity)");
ABSL_FLAG(int, optimizer_threads, 0,
          "CPU optimizer threads (0 = every CPU this process may use: affinity "
          "and cgroup quota)");
ABSL_FLAG(std::string, host_memory_budget, "0",
          "Host memory budget for training state, e.g. 64GiB (0 = unlimited)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus /metrics address host:port ([::1]:port for IPv6; empty = "
          "no metrics); a non-loopback address needs --metrics_allow_remote");
ABSL_FLAG(int, metrics_max_connections, 16,
          "Metrics connections served at once; more are closed at once");
ABSL_FLAG(absl::Duration, metrics_request_timeout, absl::Seconds(5),
          "Whole-request deadline of a metrics connection (request in, "
          "response out), e.g. 5s");
ABSL_FLAG(bool, metrics_allow_remote, false,
          "Allow a non-loopback --metrics_listen: /metrics is unauthenticated "
          "and shows job names and progress to whoever reaches it");
ABSL_FLAG(
    double, device_peak_flops, 0,
    "Dense peak FLOP/s of the compute device for MFU (0 = a nominal figure: 40 "
    "GFLOP/s per CPU thread, 80 with AVX-512, on the cpu device)");

ABSL_FLAG(bool, node_profile, true,
          "Measure the node's hardware profile for plan --predict (once; "
          "cached in the state directory as node_profile.json)");

ABSL_FLAG(int64_t, node_profile_nvme_mib, 256,
          "MiB written and read per pass when the node's profile measures the "
          "NVMe tier (one file striped over the --ssd_root directories, in "
          "private directories removed afterwards; only with --ssd_root)");

ABSL_FLAG(int, max_job_restarts, 2,
          "Times a job the daemon stopped under (crash, kill -9, OOM killer) "
          "is resumed at the next start; the stop after that fails it, so one "
          "job cannot crash-loop the daemon (0 = fail it at the first)");

ABSL_FLAG(std::vector<std::string>, data_root, {},
          "Directories (absolute, comma-separated) inside which a job's token "
          "file (data.source) must be; relative paths are relative to them. "
          "Empty = only the builtin dataset. The flag given twice keeps the "
          "last list: list every root in one");
ABSL_FLAG(
    std::vector<std::string>, ssd_root, {},
    "Directories (absolute, comma-separated) inside which a job's NVMe tier "
    "directories (offload.ssd_dirs) must be. Empty = no NVMe tier. Leftover "
    "tier directories of killed jobs under them are removed at start");
ABSL_FLAG(std::string, ssd_fault_injection, "",
          "TESTING ONLY, never in production: faults to inject into the NVMe "
          "tier of the first job that opens one, e.g. eio_read@60, "
          "torn_write@61, enospc_write@61 (the N-th read or write request of "
          "that tier; docs/storage.md). Empty = none");

namespace stronghold::server {
namespace {

int Fail(const std::string& message) {
  std::cerr << "strongholdd: " << message << "\n";
  return 2;
}

// The unix socket's mode, group and admin group from the flags.
absl::StatusOr<UnixListenerOptions> UnixSocketOptions(const std::string& path) {
  UnixListenerOptions options{.path = path};
  absl::StatusOr<mode_t> mode =
      ParseSocketMode(absl::GetFlag(FLAGS_socket_mode));
  if (!mode.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--socket_mode: ", mode.status().message()));
  }
  options.mode = *mode;
  for (auto [flag, name, group] :
       {std::tuple("--socket_group", absl::GetFlag(FLAGS_socket_group),
                   &options.group),
        std::tuple("--admin_group", absl::GetFlag(FLAGS_admin_group),
                   &options.admin_group)}) {
    if (name.empty()) continue;
    absl::StatusOr<gid_t> gid = LookUpGroup(name);
    if (!gid.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": ", gid.status().message()));
    }
    *group = *gid;
  }
  if ((options.mode & 0002) != 0) {
    LOG(WARNING)
        << "--socket_mode " << absl::GetFlag(FLAGS_socket_mode)
        << ": every local user may connect (each acts only on their own jobs)";
  }
  return options;
}

int Main() {
  // Every thread inherits a mask blocking the shutdown signals; the main
  // thread takes them with sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const absl::StatusOr<std::string> socket_flag = SocketPathFromFlag(
      absl::GetFlag(FLAGS_socket).empty() ? DefaultSocketPath()
                                          : absl::GetFlag(FLAGS_socket));
  if (!socket_flag.ok())
    return Fail(std::string(socket_flag.status().message()));
  const std::string socket_path = *socket_flag;
  std::string state_dir = absl::GetFlag(FLAGS_state_dir);
  if (state_dir.empty()) {
    // systemd's StateDirectory=; with several entries (the unit also has
    // the data and ssd roots there) they are joined by ':', the first ours.
    const char* sd = std::getenv("STATE_DIRECTORY");
    state_dir = sd != nullptr ? std::string(sd, strcspn(sd, ":"))
                              : "/var/lib/stronghold";
  }
  // Before anything reads or writes the state: one daemon per directory.
  absl::StatusOr<StateDirLock> state_lock = StateDirLock::Acquire(state_dir);
  if (!state_lock.ok()) return Fail(std::string(state_lock.status().message()));
  JobManagerOptions options;
  options.state_dir = state_dir;
  absl::StatusOr<int64_t> device_budget =
      ParseBytes(absl::GetFlag(FLAGS_device_memory_budget));
  if (!device_budget.ok())
    return Fail(absl::StrCat("--device_memory_budget: ",
                             device_budget.status().message()));
  std::string device = absl::GetFlag(FLAGS_device);
  if (device == "auto") {
    // The first GPU when this binary has CUDA and the node has one.
    device =
        core::CreateDevice("cuda:0", *device_budget).ok() ? "cuda:0" : "cpu";
  }
  options.budgets.device = device;
  if (device != "cpu") {
    // One GPU device for the daemon's life: streams and events are created
    // once and every job's buffers come from its budget.
    absl::StatusOr<std::unique_ptr<core::Device>> gpu =
        core::CreateDevice(device, *device_budget);
    if (!gpu.ok())
      return Fail(absl::StrCat("--device: ", gpu.status().message()));
    options.device = std::shared_ptr<core::Device>(std::move(*gpu));
    if (*device_budget == 0) *device_budget = options.device->budget_bytes();
  }
  absl::StatusOr<int64_t> host_budget =
      ParseBytes(absl::GetFlag(FLAGS_host_memory_budget));
  if (!host_budget.ok())
    return Fail(
        absl::StrCat("--host_memory_budget: ", host_budget.status().message()));
  options.budgets.device_bytes = *device_budget;
  options.budgets.host_bytes = *host_budget;

  absl::StatusOr<storage::FaultSpec> faults =
      storage::ParseFaultSpec(absl::GetFlag(FLAGS_ssd_fault_injection));
  if (!faults.ok())
    return Fail(
        absl::StrCat("--ssd_fault_injection: ", faults.status().message()));
  options.ssd_fault_injection = *std::move(faults);
  options.create_communicator = core::CreateC10dCommunicator;
  if (!options.ssd_fault_injection.faults.empty()) {
    LOG(WARNING) << "*** TESTING ONLY: --ssd_fault_injection="
                 << options.ssd_fault_injection.text
                 << " will make the first job that spills to the NVMe tier "
                    "FAIL on purpose. "
                 << "Never run a production daemon with this flag. ***";
  }

  const std::string tcp = absl::GetFlag(FLAGS_listen);
  absl::StatusOr<TcpSecurity> tcp_security = SetUpTcpSecurity(
      {.listen = tcp,
       .tls_cert_file = absl::GetFlag(FLAGS_tls_cert),
       .tls_key_file = absl::GetFlag(FLAGS_tls_key),
       .tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca),
       .token_file = absl::GetFlag(FLAGS_token_file),
       .insecure_loopback = absl::GetFlag(FLAGS_insecure_loopback)});
  if (!tcp_security.ok())
    return Fail(std::string(tcp_security.status().message()));
  if (tcp_security->policy.insecure_loopback) {
    LOG(WARNING) << "*** TESTING ONLY: --insecure_loopback serves " << tcp
                 << " without TLS or authentication; every local process that "
                    "connects to it "
                 << "is the one principal \"insecure-loopback\". ***";
  }
  absl::StatusOr<UnixListenerOptions> unix_options =
      UnixSocketOptions(socket_path);
  if (!unix_options.ok())
    return Fail(std::string(unix_options.status().message()));

  for (const StartupNote& note :
       RunStartupChecks(device, options.budgets.device)) {
    if (note.warning) {
      LOG(WARNING) << note.text;
    } else {
      LOG(INFO) << note.text;
    }
  }

  const int cpu_threads = static_cast<int>(std::thread::hardware_concurrency());
  MetricsOptions metrics_options;
  metrics_options.device = options.budgets.device;
  metrics_options.device_peak_flops_per_s =
      absl::GetFlag(FLAGS_device_peak_flops);
  if (metrics_options.device_peak_flops_per_s < 0)
    return Fail("--device_peak_flops: must be >= 0");
  if (metrics_options.device_peak_flops_per_s == 0) {
    metrics_options.device_peak_flops_per_s = NominalPeakFlops(
        options.budgets.device, cpu_threads, __builtin_cpu_supports("avx512f"));
  }
  LOG(INFO) << "MFU is model FLOP/s over a dense peak of "
            << metrics_options.device_peak_flops_per_s / 1e9 << " GFLOP/s"
            << (absl::GetFlag(FLAGS_device_peak_flops) > 0
                    ? " (--device_peak_flops)"
                    : " (nominal; set --device_peak_flops)");
  metrics_options.version = kVersion;
  metrics_options.torch_version = core::TorchVersion();
  Metrics metrics(metrics_options);
  options.listener = &metrics;
  // The backend the NVMe tier's devices get (storage/block_device_factory.h
  // probes the same way, once per process, when a job opens one).
  metrics.SetIoBackend(storage::ProbeIoUring().ok() ? "io_uring" : "pread");

  // Listen for scrapes before anything else can fail late: a taken port is
  // a configuration error worth failing the start for.
  std::unique_ptr<MetricsHttpServer> metrics_server;
  const std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (!metrics_listen.empty()) {
    absl::StatusOr<bool> loopback = IsLoopbackAddress(metrics_listen);
    if (!loopback.ok()) {
      return Fail(
          absl::StrCat("--metrics_listen: ", loopback.status().message()));
    }
    if (!*loopback && !absl::GetFlag(FLAGS_metrics_allow_remote)) {
      return Fail(absl::StrCat(
          "--metrics_listen: ", metrics_listen,
          " is not a loopback address; /metrics has no authentication and "
          "shows job names and progress, so serving it beyond this host needs "
          "--metrics_allow_remote"));
    }
    const MetricsHttpServerOptions http{
        .listen = metrics_listen,
        .request_deadline = absl::GetFlag(FLAGS_metrics_request_timeout),
        .max_connections = absl::GetFlag(FLAGS_metrics_max_connections)};
    if (http.max_connections < 1)
      return Fail("--metrics_max_connections: must be >= 1");
    if (http.request_deadline <= absl::ZeroDuration()) {
      return Fail("--metrics_request_timeout: must be > 0");
    }
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        MetricsHttpServer::Start(http, metrics.registry());
    if (!started.ok())
      return Fail(
          absl::StrCat("--metrics_listen: ", started.status().message()));
    metrics_server = *std::move(started);
  }

  options.device_peak_flops = metrics_options.device_peak_flops_per_s;
  options.optimizer_threads = absl::GetFlag(FLAGS_optimizer_threads);
  if (options.optimizer_threads < 0)
    return Fail("--optimizer_threads: must be >= 0");
  options.data_roots = absl::GetFlag(FLAGS_data_root);
  options.ssd_roots = absl::GetFlag(FLAGS_ssd_root);
  options.max_job_restarts = absl::GetFlag(FLAGS_max_job_restarts);
  if (options.max_job_restarts < 0) {
    return Fail(absl::StrCat("--max_job_restarts: must be >= 0, got ",
                             options.max_job_restarts));
  }
  if (absl::Status s = ApplyLimitFlags(state_dir, options); !s.ok()) {
    return Fail(std::string(s.message()));
  }
  if (absl::GetFlag(FLAGS_node_profile)) {
    core::MeasureOptions measure;
    measure.optimizer_threads = options.optimizer_threads;
    core::NvmeMeasureOptions nvme;
    nvme.dirs = options.ssd_roots;
    const int64_t nvme_mib = absl::GetFlag(FLAGS_node_profile_nvme_mib);
    if (nvme_mib < 1 || nvme_mib > 65536) {
      return Fail(absl::StrCat(
          "--node_profile_nvme_mib: must be in [1, 65536], got ", nvme_mib));
    }
    nvme.bytes = nvme_mib << 20;
    options.node_profile =
        NodeProfile::Create({.cache_path = state_dir + "/node_profile.json",
                             .device = options.device,
                             .measure = measure,
                             .nvme = nvme});
  }
  absl::StatusOr<std::unique_ptr<JobManager>> jobs =
      JobManager::Create(options);
  if (!jobs.ok()) return Fail(std::string(jobs.status().message()));
  LOG(INFO) << "token files from --data_root: "
            << (options.data_roots.empty()
                    ? "none (only the builtin dataset)"
                    : absl::StrJoin(options.data_roots, ", "))
            << "; NVMe tier directories in --ssd_root: "
            << (options.ssd_roots.empty()
                    ? "none (no NVMe tier)"
                    : absl::StrJoin(options.ssd_roots, ", "));
  metrics.SetNode((*jobs)->Node());
  // Jobs that ended before this start are counted too.
  std::string page_token;
  do {
    absl::StatusOr<stronghold::v1::ListJobsResponse> page =
        (*jobs)->List(1000, page_token);
    if (!page.ok()) break;
    metrics.SeedJobs({page->jobs().begin(), page->jobs().end()});
    page_token = page->next_page_token();
  } while (!page_token.empty());

  std::error_code ec;
  std::filesystem::create_directories(
      std::filesystem::path(socket_path).parent_path(), ec);
  // The daemon accepts on its unix socket itself, to know each peer.
  UnixPeerTable unix_peers;
  absl::StatusOr<std::unique_ptr<UnixListener>> unix_listener =
      UnixListener::Listen(*std::move(unix_options), &unix_peers);
  if (!unix_listener.ok()) {
    return Fail(absl::StrCat("--socket: ", unix_listener.status().message()));
  }

  const CallerIdentity identity(&unix_peers, tcp_security->policy);
  StrongholdService service(jobs->get(), &identity);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (absl::Status s = ApplyGrpcFlags(builder); !s.ok())
    return Fail(std::string(s.message()));
  if (!tcp.empty()) builder.AddListeningPort(tcp, tcp_security->credentials);
  builder.RegisterService(&service);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<RpcMetricsInterceptorFactory>(*metrics.registry()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    return Fail(tcp.empty() ? "cannot start the gRPC server"
                            : absl::StrCat("--listen: cannot listen on ", tcp));
  }
  grpc::Server* grpc_server = server.get();
  (*unix_listener)->Start([grpc_server](int fd) {
    grpc::AddInsecureChannelFromFd(grpc_server, fd);
  });
  LOG(INFO) << "strongholdd " << kVersion << " serving on unix:" << socket_path
            << (tcp.empty() ? "" : absl::StrCat(" and ", tcp)) << ", state in "
            << state_dir << ", device " << options.budgets.device
            << (metrics_server == nullptr
                    ? ""
                    : absl::StrCat(", metrics at ", metrics_listen, " (port ",
                                   metrics_server->port(), ") /metrics"));

  SystemdNotifier systemd;
  systemd.Ready(absl::StrCat("serving on unix:", socket_path));
  // The watchdog pings only while the job manager answers (takes its lock).
  JobManager* manager = jobs->get();
  systemd.StartWatchdog([manager] {
    manager->Ping();
    return true;
  });

  int sig = 0;
  sigwait(&signals, &sig);
  LOG(INFO) << "signal " << sig
            << ": finishing the current step and checkpointing";
  systemd.Stopping("finishing the current step and checkpointing");
  (*jobs)->Shutdown();
  (*unix_listener)->Stop();  // nothing may be handed to a server shutting down
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  LOG(INFO) << "stopped";
  return 0;
}

}  // namespace
}  // namespace stronghold::server

int main(int argc, char** argv) {
  // Large blocks (LibTorch's tensors and temporaries, the tier's buffers)
  // are mapped and unmapped, never kept in malloc's heap: glibc's default
  // threshold rises to 32 MiB after the first large free, so a job's freed
  // temporaries stayed resident. Measured on a 73 MB model spilled to the
  // NVMe tier (docs/benchmarks.md): the first job's peak RSS over idle fell
  // from +127 to +106 MiB and what stayed after it from +77 to +28 MiB.
  // Before any thread starts: mallopt is not thread-safe against malloc.
  mallopt(M_MMAP_THRESHOLD, 128 << 10);
  absl::SetProgramUsageMessage(
      "strongholdd: trains transformer models larger than GPU memory");
  absl::FlagsUsageConfig usage;
  usage.version_string = [] {
    return absl::StrCat("strongholdd ", stronghold::server::kVersion, "\n");
  };
  absl::SetFlagsUsageConfig(usage);
  absl::ParseCommandLine(argc, argv);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv[0]);
  return stronghold::server::Main();
}
