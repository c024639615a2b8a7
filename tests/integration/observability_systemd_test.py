#!/usr/bin/env python3
"""strongholdd as a systemd service, without systemd running.

- sd_notify: the daemon, given a NOTIFY_SOCKET the test listens on, sends
  READY=1 only once its socket and /metrics accept connections, WATCHDOG=1
  pings when WATCHDOG_USEC asks for them, and STOPPING=1 after SIGTERM.
- deploy/install.sh --destdir stages a tree whose binaries run with the
  libraries it copied, and `systemd-analyze verify` accepts the installed
  unit; `systemd-sysusers` accepts the sysusers file.
- Confinement (docs/security.md, "systemd"): the installed unit drops every
  capability, hides other users' processes, allow-lists system calls and
  takes MemoryMax=/TasksMax= from the budgets (deploy/systemd/unit-limits.sh);
  `systemd-analyze security --offline` rates it at most 2.0; and every system
  call the daemon makes through a job on the NVMe tier (traced with strace)
  is inside the unit's SystemCallFilter=, io_uring's included.
  Not tested here: the daemon under systemd's own seccomp filter (no systemd
  runs as PID 1 in CI).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", os.path.dirname(__file__) + "/../.."),
                        "stronghold")
DAEMON = os.path.join(RUNFILES, "server/strongholdd")
CLIENT = os.path.join(RUNFILES, "client/strongholdctl")
INSTALL = os.path.join(RUNFILES, "deploy/install.sh")
UNIT = os.path.join(RUNFILES, "deploy/systemd/strongholdd.service")
UNIT_LIMITS = os.path.join(RUNFILES, "deploy/systemd/unit-limits.sh")
SYSTEM_UNITS = "/lib/systemd/system"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unit_settings(path):
    """[Service] settings of a unit file: name -> list of values, in order."""
    settings = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")) and "=" in line:
                name, value = line.split("=", 1)
                settings.setdefault(name, []).append(value)
    return settings


def analyze():
    path = shutil.which("systemd-analyze")
    if path is None:
        raise AssertionError("systemd-analyze not found (Debian package systemd)")
    return path


def expand_syscall_set(name):
    """The system calls of a name or @group, as systemd-analyze lists them."""
    if not name.startswith("@"):
        return {name}
    out = subprocess.run([analyze(), "syscall-filter", name], capture_output=True, text=True,
                         check=True).stdout
    calls = set()
    for line in out.splitlines()[1:]:  # the first line is the group's name
        entry = line.strip()
        if entry and not entry.startswith("#"):
            calls |= expand_syscall_set(entry)
    return calls


def allowed_syscalls(filter_lines):
    """What SystemCallFilter= lines allow: the first is an allow-list, later
    ones add to it, or with ~ take away from it."""
    allowed = set()
    for line in filter_lines:
        deny = line.startswith("~")
        names = set().union(*(expand_syscall_set(n) for n in line.lstrip("~").split()))
        allowed = allowed - names if deny else allowed | names
    return allowed


class NotifyTest(unittest.TestCase):

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.sock_dir = tempfile.mkdtemp(prefix="sh-notify.", dir="/tmp")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify_name = f"stronghold-test-notify-{os.getpid()}"
        self.notify.bind("\0" + self.notify_name)  # abstract: "@name" for sd_notify
        self.proc = None
        self.log = open(os.path.join(self.work, "daemon.log"), "w")

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.notify.close()
        self.log.close()
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def next_message(self, timeout_s=20):
        self.notify.settimeout(timeout_s)
        try:
            return self.notify.recv(4096).decode()
        except socket.timeout:
            with open(os.path.join(self.work, "daemon.log")) as f:
                self.fail("no notification in %d s; daemon log:\n%s" % (timeout_s, f.read()))

    def test_ready_watchdog_stopping(self):
        port = free_port()
        unix_socket = os.path.join(self.sock_dir, "d.sock")
        env = dict(os.environ, NOTIFY_SOCKET="@" + self.notify_name, WATCHDOG_USEC="400000")
        self.proc = subprocess.Popen(
            [DAEMON, "--socket", unix_socket, "--state_dir", os.path.join(self.work, "state"),
             "--metrics_listen", f"127.0.0.1:{port}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        ready = self.next_message()
        self.assertTrue(ready.startswith("READY=1\n"), ready)
        self.assertIn("STATUS=serving on unix:" + unix_socket, ready)
        # READY means both listeners accept connections already.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            self.assertIn("stronghold_build_info", r.read().decode())
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.connect(unix_socket)
        self.assertEqual(os.stat(unix_socket).st_mode & 0o777, 0o660)

        # WATCHDOG_USEC=400 ms: a ping every 200 ms.
        pings = 0
        deadline = time.monotonic() + 5
        while pings < 3 and time.monotonic() < deadline:
            message = self.next_message(timeout_s=2)
            self.assertEqual(message, "WATCHDOG=1")
            pings += 1
        self.assertEqual(pings, 3)

        self.proc.send_signal(signal.SIGTERM)
        message = self.next_message()
        while message == "WATCHDOG=1":  # pings already on their way
            message = self.next_message()
        self.assertTrue(message.startswith("STOPPING=1\n"), message)
        self.assertEqual(self.proc.wait(timeout=30), 0)
        self.assertFalse(os.path.exists(unix_socket))


class InstallTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        cls.result = subprocess.run(
            ["bash", INSTALL, "--destdir", cls.root, "--from", RUNFILES, "--monitoring"],
            capture_output=True, text=True, timeout=120)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)  # a copy of LibTorch: ~450 MB

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, self.result.stdout + self.result.stderr)

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def test_layout(self):
        for p in ["/opt/stronghold/bin/strongholdd", "/opt/stronghold/bin/strongholdctl",
                  "/opt/stronghold/lib/libtorch_cpu.so",
                  "/opt/stronghold/share/doc/stronghold/observability.md",
                  "/etc/systemd/system/strongholdd.service",
                  "/etc/sysusers.d/stronghold.conf",
                  "/etc/stronghold/strongholdd.conf",
                  "/etc/prometheus/strongholdd-alerts.yml",
                  "/etc/grafana/provisioning/dashboards/strongholdd.yml",
                  "/etc/grafana/provisioning/datasources/strongholdd.yml",
                  "/var/lib/grafana/dashboards/stronghold/strongholdd.json"]:
            self.assertTrue(os.path.isfile(self.path(p)), p)
        self.assertEqual(os.readlink(self.path("/usr/local/bin/strongholdctl")),
                         "/opt/stronghold/bin/strongholdctl")

    def test_installed_binaries_run_from_their_own_libraries(self):
        daemon = self.path("/opt/stronghold/bin/strongholdd")
        r = subprocess.run([daemon, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^strongholdd \d+\.\d+\.\d+")
        ldd = subprocess.run(["ldd", daemon], capture_output=True, text=True).stdout
        self.assertNotIn("not found", ldd)
        torch = [l for l in ldd.splitlines() if "libtorch_cpu.so" in l]
        self.assertEqual(len(torch), 1, ldd)
        self.assertIn(self.path("/opt/stronghold/bin/../lib/libtorch_cpu.so"), torch[0])
        r = subprocess.run([self.path("/opt/stronghold/bin/strongholdctl"), "--help"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_flag_file_is_accepted(self):
        # The shipped flags parse (only the socket is moved into the test).
        sock_dir = tempfile.mkdtemp(prefix="sh-conf.", dir="/tmp")
        try:
            conf = os.path.join(self.root, "test.conf")
            with open(self.path("/etc/stronghold/strongholdd.conf")) as f:
                flags = f.read()
            flags = flags.replace("--socket=/run/stronghold/strongholdd.sock",
                                  f"--socket={sock_dir}/d.sock")
            flags = flags.replace("--metrics_listen=127.0.0.1:9464",
                                  f"--metrics_listen=127.0.0.1:{free_port()}")
            with open(conf, "w") as f:
                f.write(flags + f"--state_dir={self.root}/state\n")
            log_path = os.path.join(self.root, "flagfile-daemon.log")
            with open(log_path, "w") as log:
                proc = subprocess.Popen([self.path("/opt/stronghold/bin/strongholdd"),
                                         f"--flagfile={conf}"], stdout=log, stderr=log)
            try:
                deadline = time.monotonic() + 20
                while not os.path.exists(f"{sock_dir}/d.sock") and proc.poll() is None:
                    self.assertLess(time.monotonic(), deadline, "no socket after 20 s")
                    time.sleep(0.1)
                with open(log_path) as f:
                    self.assertIsNone(proc.poll(), f.read())
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=30), 0)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        finally:
            shutil.rmtree(sock_dir, ignore_errors=True)

    def test_systemd_analyze_verify_accepts_the_unit(self):
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd-analyze not found (Debian package systemd)")
        # verify --root needs the units the service depends on inside the root.
        shutil.copytree(SYSTEM_UNITS, self.path("/usr/lib/systemd/system"), symlinks=True,
                        dirs_exist_ok=True)
        r = subprocess.run([analyze, "verify", "--man=no", f"--root={self.root}",
                            "strongholdd.service"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "", "systemd-analyze findings")

    def test_unit_is_confined(self):
        unit = unit_settings(self.path("/etc/systemd/system/strongholdd.service"))
        self.assertEqual(unit.get("CapabilityBoundingSet"), [""], "no capabilities at all")
        self.assertEqual(unit.get("ProtectProc"), ["invisible"])
        self.assertEqual(unit.get("SystemCallArchitectures"), ["native"])
        self.assertEqual(unit.get("SystemCallErrorNumber"), ["EPERM"])
        filters = unit.get("SystemCallFilter", [])
        self.assertTrue(filters and not filters[0].startswith("~"),
                        f"the first SystemCallFilter= must be an allow-list: {filters}")
        allowed = allowed_syscalls(filters)
        for call in ["io_uring_setup", "io_uring_enter", "io_uring_register"]:
            self.assertTrue(call in allowed, f"{call}: the NVMe tier's io_uring backend needs it")
        for call in ["setuid", "chown", "chroot", "mount", "reboot", "kexec_load", "init_module"]:
            self.assertFalse(call in allowed, f"{call} is allowed")

    def test_unit_limits_follow_the_budgets(self):
        unit = unit_settings(self.path("/etc/systemd/system/strongholdd.service"))
        r = subprocess.run(["bash", UNIT_LIMITS, self.path("/etc/stronghold/strongholdd.conf")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        derived = dict(line.split("=", 1) for line in r.stdout.split())
        self.assertEqual(unit.get("MemoryMax"), [derived["MemoryMax"]])
        self.assertEqual(unit.get("TasksMax"), [derived["TasksMax"]])
        cpus = os.cpu_count()
        self.assertEqual(derived, {"MemoryMax": "90%", "TasksMax": str(4 * cpus + 512)},
                         "the shipped flags have no budget and one optimizer thread per CPU")

        def limits(flags, cpus="64"):
            conf = os.path.join(self.root, "limits.conf")
            with open(conf, "w") as f:
                f.write(flags)
            return subprocess.run(["bash", UNIT_LIMITS, conf, cpus], capture_output=True,
                                  text=True, timeout=30)

        # 64 CPUs: 64 intra-op + 3 optimizer + 128 io_uring + 512 threads.
        r = limits("--device=auto\n--host_memory_budget=64GiB\n--optimizer_threads=3\n")
        self.assertEqual(r.stdout, f"MemoryMax={(64 + 4) << 30}\nTasksMax=707\n", r.stderr)
        r = limits("--host_memory_budget=1.5GiB\n--host_memory_budget=2GB\n")  # the last wins
        self.assertEqual(r.stdout, f"MemoryMax={2 * 10**9 + (4 << 30)}\nTasksMax=768\n", r.stderr)
        r = limits("--host_memory_budget=64Gb\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--host_memory_budget=64Gb is not a size", r.stderr)

    def test_security_exposure_is_low(self):
        unit = self.path("/etc/systemd/system/strongholdd.service")
        r = subprocess.run([analyze(), "security", "--offline=true", "--no-pager", unit],
                           capture_output=True, text=True, timeout=60)
        match = re.search(r"Overall exposure level for strongholdd.service: (\d+\.\d)", r.stdout)
        self.assertIsNotNone(match, r.stdout + r.stderr)
        # 5.5 MEDIUM before CapabilityBoundingSet=, ProtectProc= and
        # SystemCallFilter=; 1.8 with them (docs/security.md).
        self.assertLessEqual(float(match.group(1)), 2.0, r.stdout)

    def test_sysusers_file_is_valid(self):
        sysusers = shutil.which("systemd-sysusers")
        self.assertIsNotNone(sysusers, "systemd-sysusers not found (Debian package systemd)")
        os.makedirs(self.path("/etc"), exist_ok=True)
        for name in ["passwd", "group", "shadow", "gshadow"]:
            open(self.path("/etc/" + name), "a").close()
        r = subprocess.run([sysusers, f"--root={self.root}",
                            self.path("/etc/sysusers.d/stronghold.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.path("/etc/passwd")) as f:
            passwd = f.read()
        self.assertRegex(passwd, r"(?m)^stronghold:x:\d+:\d+:Stronghold training daemon:"
                                 r"/var/lib/stronghold:")
        with open(self.path("/etc/group")) as f:
            group = f.read()
        self.assertRegex(group, r"(?m)^stronghold:x:\d+:")
        self.assertRegex(group, r"(?m)^video:x:\d+:stronghold$")


class SyscallTraceTest(unittest.TestCase):
    """The daemon runs a job that spills to the NVMe tier under strace; every
    system call it makes must pass the unit's SystemCallFilter=."""

    def setUp(self):
        self.work = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.sock_dir = tempfile.mkdtemp(prefix="sh-trace.", dir="/tmp")
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.sock_dir, ignore_errors=True)

    def ctl(self, *args, timeout=120):
        r = subprocess.run([CLIENT, "--daemon", self.socket, *args], capture_output=True,
                           text=True, timeout=timeout)
        self.assertEqual(r.returncode, 0, f"strongholdctl {' '.join(args)}: {r.stdout}{r.stderr}")
        return r.stdout

    def test_every_system_call_of_a_job_passes_the_filter(self):
        strace = shutil.which("strace")
        self.assertIsNotNone(strace, "strace not found (Debian package strace)")
        self.socket = os.path.join(self.sock_dir, "d.sock")
        trace = os.path.join(self.work, "trace")
        port = free_port()
        log = open(os.path.join(self.work, "daemon.log"), "w")
        os.mkdir(os.path.join(self.work, "ssd"))
        self.proc = subprocess.Popen(
            [strace, "-f", "-qq", "-o", trace, DAEMON, "--socket", self.socket,
             "--state_dir", os.path.join(self.work, "state"), "--device", "cpu",
             "--ssd_root", os.path.join(self.work, "ssd"),
             "--metrics_listen", f"127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.socket):
            self.assertIsNone(self.proc.poll(), "the daemon exited under strace")
            self.assertLess(time.monotonic(), deadline, "no socket after 60 s")
            time.sleep(0.2)
        ssd = os.path.join(self.work, "ssd")  # the daemon's --ssd_root
        # A host budget this small puts the fp16 masters and Adam moments of
        # all 8 layers on the NVMe tier: reads and writes through io_uring.
        # (With fewer layers the tier's staging, 3 slots and a checkpoint's
        # layer, costs more than spilling saves.)
        self.ctl("submit", "--layers", "8", "--hidden", "64", "--heads", "4", "--seq-len", "32",
                 "--steps", "2", "--precision", "fp16", "--method", "stronghold", "--window", "1",
                 "--ssd-dir", ssd, "--host-memory-budget", "8400KiB", "--checkpoint-every", "2")
        self.ctl("watch", "1", timeout=600)
        self.ctl("fetch", "1", "--out", os.path.join(self.work, "checkpoint"), timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            metrics = r.read().decode()
        nvme_read = re.search(r'stronghold_job_transfer_bytes_total\{direction="nvme_read",'
                              r'job_name="jobs/1"\} (\S+)', metrics)
        self.assertIsNotNone(nvme_read, metrics)
        self.assertGreater(float(nvme_read.group(1)), 0, "the job did not read the NVMe tier")
        # strace's child is the daemon; SIGTERM it for its shutdown path too.
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            daemon_pid = int(f.read().split()[0])
        os.kill(daemon_pid, signal.SIGTERM)
        self.assertEqual(self.proc.wait(timeout=60), 0)
        log.close()

        seen = set()
        with open(trace) as f:
            for line in f:
                m = re.match(r"\d+ +(?:<\.\.\. )?([a-z_0-9]+)[( ]", line)
                if m:
                    seen.add(m.group(1))
        self.assertIn("io_uring_enter", seen, "the NVMe tier did not use io_uring")
        self.assertIn("execve", seen)
        allowed = allowed_syscalls(unit_settings(UNIT)["SystemCallFilter"])
        self.assertEqual(sorted(seen - allowed), [],
                         "system calls the unit's SystemCallFilter= refuses (EPERM)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
