// The daemon's own unix socket: how it is created, who is on the other end
// of each connection, and that a handler still finds its own caller after
// the fd numbers of other connections were closed and reused.
#include <fcntl.h>
#include <grp.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/caller_identity.h"
#include "server/auth/unix_listener.h"
#include "server/auth/unix_peers.h"
#include "stronghold/v1/stronghold.grpc.pb.h"

extern char** environ;

namespace stronghold::server {
namespace {

using ::testing::HasSubstr;

// A fresh directory for sockets, removed at exit: Bazel's TEST_TMPDIR can be
// longer than a socket path may be.
std::string SocketDir() {
  struct Dirs {
    ~Dirs() {
      for (const std::string& dir : made) std::filesystem::remove_all(dir);
    }
    std::vector<std::string> made;
  };
  static Dirs* dirs = new Dirs;  // removed by the static below, at exit
  static const std::unique_ptr<Dirs> remove_at_exit(dirs);
  char dir[] = "/tmp/sh-unix-test.XXXXXX";
  EXPECT_NE(mkdtemp(dir), nullptr);
  dirs->made.push_back(dir);
  return dir;
}

sockaddr_un Address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  snprintf(address.sun_path, sizeof(address.sun_path), "%s", path.c_str());
  return address;
}

int Connect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const sockaddr_un address = Address(path);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&address),
              sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST(SocketModeTest, Parses) {
  EXPECT_EQ(*ParseSocketMode("0660"), 0660);
  EXPECT_EQ(*ParseSocketMode("666"), 0666);
  EXPECT_EQ(*ParseSocketMode("0"), 0);
  for (const char* bad : {"", "0668", "1777", "rw-rw----", "06600", "-1"}) {
    EXPECT_EQ(ParseSocketMode(bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(UnixListenerTest, SetsModeAndGroupBeforeAccepting) {
  const std::string path = SocketDir() + "/d.sock";
  UnixPeerTable peers;
  // Root may give the socket any group; others only one of their own.
  const gid_t group = geteuid() == 0 ? 65534 : getegid();
  absl::StatusOr<std::unique_ptr<UnixListener>> listener = UnixListener::Listen(
      {.path = path, .mode = 0640, .group = group}, &peers);
  ASSERT_TRUE(listener.ok()) << listener.status();
  struct stat st;
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640);
  EXPECT_EQ(st.st_gid, group);
  (*listener)->Stop();
  EXPECT_NE(lstat(path.c_str(), &st), 0) << "Stop() removes the socket";
}

TEST(UnixListenerTest, RefusesAPathThatIsNotASocket) {
  const std::string path = SocketDir() + "/not-a-socket";
  std::ofstream(path) << "precious";
  UnixPeerTable peers;
  absl::StatusOr<std::unique_ptr<UnixListener>> listener =
      UnixListener::Listen({.path = path}, &peers);
  EXPECT_EQ(listener.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(listener.status().message(),
              HasSubstr("exists and is not a socket"));
  std::ifstream in(path);
  std::string text;
  in >> text;
  EXPECT_EQ(text, "precious");
}

TEST(UnixListenerTest, ReplacesAStaleSocketButNotALiveOne) {
  const std::string path = SocketDir() + "/d.sock";
  {  // A socket left behind by a daemon that died: bound, never unlinked.
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    const sockaddr_un address = Address(path);
    ASSERT_EQ(
        bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)),
        0);
    close(fd);
  }
  UnixPeerTable peers;
  absl::StatusOr<std::unique_ptr<UnixListener>> first =
      UnixListener::Listen({.path = path}, &peers);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<UnixListener>> second =
      UnixListener::Listen({.path = path}, &peers);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(),
              HasSubstr("another process serves on"));
  EXPECT_GE(Connect(path), 0) << "the first listener still has its socket";
}

TEST(UnixPeersTest, RecordsTheKernelsCredentialsAndRecognisesTheSocket) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  absl::StatusOr<UnixPeer> peer = ReadUnixPeer(fds[0], std::nullopt);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->uid, geteuid());
  EXPECT_EQ(peer->gid, getegid());
  EXPECT_EQ(peer->pid, getpid());
  EXPECT_EQ(peer->admin, geteuid() == 0);
  // The primary group counts as membership of the admin group.
  EXPECT_TRUE(ReadUnixPeer(fds[0], getegid())->admin);

  UnixPeerTable table;
  EXPECT_EQ(table.Find(absl::StrCat("fd:", fds[0])).status().code(),
            absl::StatusCode::kUnauthenticated)
      << "never accepted";
  table.Add(fds[0], *peer);
  EXPECT_EQ(table.Find(absl::StrCat("fd:", fds[0]))->pid, getpid());
  for (const char* bad :
       {"unix:/x.sock", "fd:", "fd:-1", "fd:12x", "ipv4:127.0.0.1:1"}) {
    EXPECT_EQ(table.Find(bad).status().code(),
              absl::StatusCode::kUnauthenticated)
        << bad;
  }
  // The number now names another socket: the entry is not trusted.
  const int number = fds[0];
  close(fds[0]);
  close(fds[1]);
  int other[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, other), 0);
  ASSERT_EQ(other[0], number) << "the kernel hands out the lowest free number";
  EXPECT_EQ(table.Find(absl::StrCat("fd:", number)).status().code(),
            absl::StatusCode::kUnauthenticated);
  close(other[0]);
  close(other[1]);
}

// A child connects as another user, with the given groups, and waits.
pid_t ConnectAs(const std::string& path, uid_t uid, gid_t gid,
                std::vector<gid_t> groups) {
  const sockaddr_un address = Address(path);
  const pid_t pid = fork();
  if (pid == 0) {  // only system calls from here: the parent has threads
    if (setgroups(groups.size(), groups.data()) != 0 ||
        setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
      _exit(1);
    }
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address),
                sizeof(address)) != 0)
      _exit(2);
    char byte;
    (void)read(fd, &byte, 1);  // until the parent closes
    _exit(0);
  }
  return pid;
}

TEST(UnixPeersTest, AdminGroupMembershipAsTheKernelSawIt) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root to connect as other users (CI runs as root)";
  const std::string dir = SocketDir();
  chmod(dir.c_str(), 0755);
  const std::string path = dir + "/d.sock";
  const int listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
  const sockaddr_un address = Address(path);
  ASSERT_EQ(bind(listen_fd, reinterpret_cast<const sockaddr*>(&address),
                 sizeof(address)),
            0);
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  ASSERT_EQ(listen(listen_fd, 8), 0);
  constexpr gid_t kAdmins = 4242;
  struct Case {
    gid_t gid;
    std::vector<gid_t> groups;
    bool admin;
  };
  for (const Case& c :
       {Case{65534, {}, false}, Case{65534, {100, kAdmins}, true},
        Case{kAdmins, {}, true}, Case{65534, {100}, false}}) {
    const pid_t child = ConnectAs(path, 65534, c.gid, c.groups);
    const int fd = accept(listen_fd, nullptr, nullptr);
    ASSERT_GE(fd, 0);
    absl::StatusOr<UnixPeer> peer = ReadUnixPeer(fd, kAdmins);
    ASSERT_TRUE(peer.ok()) << peer.status();
    EXPECT_EQ(peer->uid, 65534);
    EXPECT_EQ(peer->gid, c.gid);
    EXPECT_EQ(peer->pid, child);
    EXPECT_EQ(peer->admin, c.admin)
        << "gid " << c.gid << ", " << c.groups.size() << " groups";
    EXPECT_FALSE(ReadUnixPeer(fd, std::nullopt)->admin)
        << "no admin group: root only";
    close(fd);
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  close(listen_fd);
}

// GetNode answers, after a pause, who the kernel says is calling: the
// principal (through CallerIdentity) and the peer's pid.
class SlowWhoAmI final : public v1::Stronghold::Service {
 public:
  SlowWhoAmI(const UnixPeerTable* peers, const CallerIdentity* identity)
      : peers_(peers), identity_(identity) {}

  grpc::Status GetNode(grpc::ServerContext* context, const v1::GetNodeRequest*,
                       v1::Node* node) override {
    // Long enough for clients that gave up to close their connections and
    // others to take their fd numbers.
    absl::SleepFor(absl::Milliseconds(300));
    absl::StatusOr<Principal> principal = identity_->Identify(*context);
    absl::StatusOr<UnixPeer> peer = peers_->Find(context->peer());
    absl::MutexLock lock(&mu_);
    if (!principal.ok() || !peer.ok()) {
      ++failures_;
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "unknown caller");
    }
    pids_.push_back(peer->pid);
    node->set_hostname(absl::StrCat(principal->name, " pid ", peer->pid));
    return grpc::Status::OK;
  }

  std::vector<int64_t> pids() const {
    absl::MutexLock lock(&mu_);
    return pids_;
  }
  int failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  const UnixPeerTable* const peers_;
  const CallerIdentity* const identity_;
  mutable absl::Mutex mu_;
  std::vector<int64_t> pids_ ABSL_GUARDED_BY(mu_);
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
};

// `service` on a unix socket the way the daemon serves it: accepted by a
// UnixListener, handed to gRPC with AddInsecureChannelFromFd.
class Serving {
 public:
  Serving(const std::string& path, UnixPeerTable* peers,
          grpc::Service* service) {
    grpc::ServerBuilder builder;
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    absl::StatusOr<std::unique_ptr<UnixListener>> listener =
        UnixListener::Listen({.path = path}, peers);
    EXPECT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
    grpc::Server* server = server_.get();
    listener_->Start(
        [server](int fd) { grpc::AddInsecureChannelFromFd(server, fd); });
  }
  ~Serving() { Stop(); }
  void Stop() {
    listener_->Stop();
    server_->Shutdown();
  }

 private:
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<UnixListener> listener_;
};

// strongholdctl from this test's runfiles, run without waiting.
pid_t SpawnCtl(const std::vector<std::string>& args,
               const std::string& out_path) {
  const std::string ctl = absl::StrCat(std::getenv("TEST_SRCDIR"),
                                       "/stronghold/client/strongholdctl");
  std::vector<char*> argv = {const_cast<char*>(ctl.c_str())};
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null",
                                   O_WRONLY, 0);
  pid_t pid = -1;
  EXPECT_EQ(
      posix_spawn(&pid, ctl.c_str(), &actions, nullptr, argv.data(), environ),
      0);
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

TEST(UnixSocketServingTest, SlowHandlersSeeTheirOwnCallerWhileFdsAreReused) {
  const std::string dir = SocketDir();
  const std::string path = dir + "/d.sock";
  UnixPeerTable peers;
  const CallerIdentity identity(&peers, {});
  SlowWhoAmI service(&peers, &identity);
  Serving serving(path, &peers, &service);

  // Waves of clients: in each, some wait for the answer and some give up
  // long before it (and exit, closing their connection) while the handlers
  // of all still sleep; the next wave gets the freed fd numbers.
  struct Client {
    pid_t pid;
    std::string out;
    bool waits;
  };
  std::vector<Client> clients;
  for (int wave = 0; wave < 4; ++wave) {
    std::vector<Client> this_wave;
    for (int i = 0; i < 6; ++i) {
      const bool waits = i % 2 == 0;
      const std::string out = absl::StrCat(dir, "/out-", wave, "-", i);
      const pid_t pid = SpawnCtl(
          {"--daemon", path, "--timeout", waits ? "20" : "0.05", "node"}, out);
      this_wave.push_back({pid, out, waits});
      absl::SleepFor(absl::Milliseconds(20));
    }
    for (const Client& c : this_wave) {
      int status = 0;
      ASSERT_EQ(waitpid(c.pid, &status, 0), c.pid);
      EXPECT_EQ(WIFEXITED(status) && WEXITSTATUS(status) == 0, c.waits)
          << "client " << c.pid;
    }
    clients.insert(clients.end(), this_wave.begin(), this_wave.end());
  }
  // The abandoned calls' handlers are still finishing.
  absl::SleepFor(absl::Milliseconds(600));
  serving.Stop();

  const std::string me = UnixPrincipalName(geteuid());
  std::multiset<int64_t> answered;
  for (int64_t pid : service.pids()) answered.insert(pid);
  EXPECT_EQ(service.failures(), 0);
  for (const Client& c : clients) {
    // Every call was answered with its own client's pid, once...
    EXPECT_EQ(answered.count(c.pid), 1) << "client " << c.pid;
    if (!c.waits) continue;
    // ...and those who waited were told so.
    std::ifstream in(c.out);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_THAT(text.str(), HasSubstr(absl::StrCat(me, " pid ", c.pid)))
        << c.out;
  }
  EXPECT_EQ(answered.size(), clients.size());
  EXPECT_LT(peers.size(), clients.size()) << "fd numbers were reused";
}

TEST(UnixSocketServingTest, AuthorizationHeaderIsIgnoredOnTheUnixSocket) {
  const std::string path = SocketDir() + "/d.sock";
  UnixPeerTable peers;
  absl::StatusOr<TokenTable> tokens = TokenTable::Parse(
      "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 "
      "root-by-token\n",
      "tokens");  // sha256("test")
  ASSERT_TRUE(tokens.ok());
  const CallerIdentity identity(
      &peers,
      {.tokens = std::make_shared<const TokenTable>(*std::move(tokens))});
  SlowWhoAmI service(&peers, &identity);
  Serving serving(path, &peers, &service);

  auto stub = v1::Stronghold::NewStub(
      grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer test");
  v1::Node node;
  const grpc::Status status =
      stub->GetNode(&context, v1::GetNodeRequest(), &node);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(node.hostname(),
            absl::StrCat(UnixPrincipalName(geteuid()), " pid ", getpid()));
}

}  // namespace
}  // namespace stronghold::server
