#!/usr/bin/env python3
"""The shipped dashboard and alert rules against a real Prometheus.

Runs strongholdd with a finished tiny job and a long one still training, then
the real Prometheus (Debian package `prometheus`) with the shipped scrape
configuration (target and intervals rewritten for the test) and alert rules,
and checks through Prometheus's HTTP API that every PromQL expression of the
dashboard and the rules evaluates without error, that the dashboard's panels
return data, and that promtool accepts the exposition and the shipped files.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import yaml

RUNFILES = os.path.join(os.environ.get("TEST_SRCDIR", os.path.dirname(__file__) + "/../.."),
                        "stronghold")
DAEMON = os.path.join(RUNFILES, "server/strongholdd")
CTL = os.path.join(RUNFILES, "client/strongholdctl")
PROMETHEUS_YML = os.path.join(RUNFILES, "deploy/prometheus/prometheus.yml")
ALERTS_YML = os.path.join(RUNFILES, "deploy/prometheus/strongholdd-alerts.yml")
DASHBOARD = os.path.join(RUNFILES, "deploy/grafana/dashboards/strongholdd.json")

SCRAPE_S = 1
RATE_WINDOW = "10s"  # stands in for Grafana's $__rate_interval: ten scrapes
# Grafana's variables, as an "All" selection and a short time range.
GRAFANA_VARS = {
    "$__rate_interval": RATE_WINDOW,
    "$__interval": f"{SCRAPE_S}s",
    "$__range": "1m",
    "$instance": ".*",
    "$job_name": ".*",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, predicate, timeout_s=30, interval_s=0.2):
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as e:  # not up yet
            last_error = e
        time.sleep(interval_s)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error})")


def substitute(expr):
    for name in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(name, GRAFANA_VARS[name])
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def dashboard_expressions():
    """(where, PromQL) for every panel target and template variable."""
    with open(DASHBOARD) as f:
        dashboard = json.load(f)
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for var in dashboard["templating"]["list"]:
        if var["type"] != "query":
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"])
        assert m, f"variable {var['name']}: unexpected query {var['definition']}"
        out.append((f"variable {var['name']}", m.group(1)))
    return out


def rule_expressions():
    with open(ALERTS_YML) as f:
        rules = yaml.safe_load(f)
    return [(f"rule {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]


class ObservabilityPrometheusTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        # Unix socket paths are limited to 107 bytes; TEST_TMPDIR can be longer.
        cls.sock_dir = tempfile.mkdtemp(prefix="sh-obs.", dir="/tmp")
        cls.sock = os.path.join(cls.sock_dir, "d.sock")
        cls.procs = []
        cls.metrics_port = free_port()
        cls.prom_port = free_port()
        cls.metrics_url = f"http://127.0.0.1:{cls.metrics_port}/metrics"
        cls.prom_url = f"http://127.0.0.1:{cls.prom_port}"
        try:
            cls.start_daemon()
            cls.start_jobs()
            cls.start_prometheus()
            cls.wait_for_data()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for proc, log in reversed(cls.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        cls.procs = []
        shutil.rmtree(cls.sock_dir, ignore_errors=True)

    @classmethod
    def spawn(cls, name, argv):
        log = open(os.path.join(cls.work, name + ".log"), "w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        cls.procs.append((proc, log))
        return proc

    @classmethod
    def log_of(cls, name):
        with open(os.path.join(cls.work, name + ".log")) as f:
            return f.read()

    @classmethod
    def ctl(cls, *args, check=True):
        r = subprocess.run([CTL, "--daemon", cls.sock, *args], capture_output=True, text=True,
                           timeout=30)
        if check and r.returncode != 0:
            raise AssertionError(f"strongholdctl {' '.join(args)}: {r.stdout}{r.stderr}")
        return r

    @classmethod
    def start_daemon(cls):
        cls.daemon = cls.spawn("strongholdd", [
            DAEMON, "--socket", cls.sock, "--state_dir", os.path.join(cls.work, "state"),
            "--metrics_listen", f"127.0.0.1:{cls.metrics_port}"])
        wait_for("strongholdd's /metrics", lambda: "stronghold_build_info" in http_get(
            cls.metrics_url))
        wait_for("strongholdd's socket", lambda: cls.ctl("node", check=False).returncode == 0)

    @classmethod
    def start_jobs(cls):
        spec = ["--layers", "2", "--hidden", "64", "--heads", "4", "--seq-len", "64"]
        cls.ctl("submit", *spec, "--steps", "30")
        cls.ctl("watch", "jobs/1")  # until it ends
        # A second job keeps training while Prometheus scrapes, so rates,
        # tier usage and the running state have data.
        cls.ctl("submit", *spec, "--steps", "1000000")
        cls.ctl("status", "jobs/999", check=False)  # a NOT_FOUND for the RPC metrics

    @classmethod
    def start_prometheus(cls):
        with open(PROMETHEUS_YML) as f:
            config = yaml.safe_load(f)
        config["global"]["scrape_interval"] = f"{SCRAPE_S}s"
        config["global"]["evaluation_interval"] = f"{SCRAPE_S}s"
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "strongholdd"]
        job["static_configs"] = [{"targets": [f"127.0.0.1:{cls.metrics_port}"]}]
        # rule_files are relative to the configuration file: keep them beside it.
        for rule_file in config["rule_files"]:
            shutil.copy(os.path.join(os.path.dirname(PROMETHEUS_YML), rule_file), cls.work)
        config_path = os.path.join(cls.work, "prometheus.yml")
        with open(config_path, "w") as f:
            yaml.safe_dump(config, f)
        prometheus = shutil.which("prometheus")
        if prometheus is None:
            raise AssertionError("prometheus not found: install the Debian package prometheus "
                                 "(deploy/install-deps.sh does)")
        cls.spawn("prometheus", [
            prometheus, f"--config.file={config_path}",
            f"--storage.tsdb.path={os.path.join(cls.work, 'tsdb')}",
            f"--web.listen-address=127.0.0.1:{cls.prom_port}", "--log.level=warn"])
        wait_for("Prometheus ready", lambda: http_get(cls.prom_url + "/-/ready") is not None)

    @classmethod
    def query(cls, expr):
        url = cls.prom_url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            return json.loads(http_get(url))
        except urllib.error.HTTPError as e:  # 400/422 carry the error as JSON
            return json.loads(e.read().decode())

    @classmethod
    def wait_for_data(cls):
        def scraped_enough():
            r = cls.query(f"count_over_time(stronghold_job_steps_total{{job_name='jobs/2'}}[{RATE_WINDOW}])")
            return r["data"]["result"] and float(r["data"]["result"][0]["value"][1]) >= 6

        wait_for("ten seconds of scrapes of the running job", scraped_enough, timeout_s=40)

        def rules_evaluated():
            groups = json.loads(http_get(cls.prom_url + "/api/v1/rules"))["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            return rules and all(r.get("lastEvaluation", "").startswith("2") and
                                 not r["lastEvaluation"].startswith("0001") for r in rules)

        wait_for("every rule evaluated", rules_evaluated, timeout_s=20)

    def value(self, expr):
        r = self.query(expr)
        self.assertEqual(r["status"], "success", r)
        self.assertTrue(r["data"]["result"], f"no data for {expr}")
        return float(r["data"]["result"][0]["value"][1])

    def test_every_dashboard_and_rule_expression_evaluates(self):
        expressions = dashboard_expressions() + rule_expressions()
        self.assertGreater(len(expressions), 25)
        empty = []
        for where, expr in expressions:
            with self.subTest(where=where):
                r = self.query(substitute(expr))
                self.assertEqual(r.get("status"), "success", f"{where}: {expr}: {r}")
                if where.startswith(("panel", "variable")) and not r["data"]["result"]:
                    empty.append(where)
        # With a job running, every panel and variable has something to show.
        self.assertEqual(empty, [], "dashboard queries without data")

    def test_rules_are_loaded_and_healthy(self):
        groups = json.loads(http_get(self.prom_url + "/api/v1/rules"))["data"]["groups"]
        loaded = {r["name"]: r for g in groups for r in g["rules"]}
        shipped = [w.split(" ", 1)[1] for w, _ in rule_expressions()]
        self.assertEqual(sorted(loaded), sorted(shipped))
        for name, rule in loaded.items():
            self.assertEqual(rule["health"], "ok", f"{name}: {rule.get('lastError')}")
        # The tiny CPU job's steps are not waiting on anything but the
        # optimizer; failed jobs and I/O errors there are none.
        self.assertEqual(loaded["StrongholdJobFailed"]["state"], "inactive")
        self.assertEqual(loaded["StrongholdIoErrors"]["state"], "inactive")

    def test_main_series_have_plausible_values(self):
        self.assertGreater(self.value(f"rate(stronghold_job_samples_total{{job_name='jobs/2'}}[{RATE_WINDOW}])"), 0)
        loss = self.value("stronghold_job_loss{job_name='jobs/2'}")
        self.assertTrue(0 < loss < 20, loss)
        mfu = self.value("stronghold_job_mfu_ratio{job_name='jobs/2'}")
        self.assertGreater(mfu, 0)
        self.assertEqual(self.value("stronghold_jobs{state='running'}"), 1)
        self.assertGreaterEqual(self.value("stronghold_jobs_ended_total{state='succeeded'}"), 1)
        self.assertEqual(self.value("stronghold_job_steps_total{job_name='jobs/1'}"), 30)
        # The daemon measures its node: each run's step time is predicted.
        self.assertGreater(self.value("stronghold_job_predicted_step_seconds{job_name='jobs/2'}"), 0)
        self.assertGreater(self.value("stronghold_tier_used_bytes{tier='device'}"), 0)
        self.assertGreater(self.value("stronghold_tier_budget_bytes{tier='device'}"), 0)
        # The daemon probes io_uring at start (the NVMe tier's backend).
        self.assertEqual(self.value("sum(stronghold_io_backend_info{backend=~'io_uring|pread'})"), 1)
        self.assertGreaterEqual(self.value(
            "stronghold_rpc_requests_total{method='SubmitJob', code='OK'}"), 2)
        self.assertGreaterEqual(self.value(
            "stronghold_rpc_requests_total{method='GetJob', code='NOT_FOUND'}"), 1)
        # The phases add up to the step time.
        phases = self.value(f"sum(rate(stronghold_job_step_phase_seconds_total{{job_name='jobs/2'}}[{RATE_WINDOW}]))")
        steps = self.value(f"rate(stronghold_job_step_duration_seconds_sum{{job_name='jobs/2'}}[{RATE_WINDOW}])")
        self.assertAlmostEqual(phases / steps, 1.0, delta=0.01)
        # The scrape's own `job` label is Prometheus's, not overwritten.
        self.assertEqual(self.query("stronghold_job_loss")["data"]["result"][0]["metric"]["job"],
                         "strongholdd")

    def test_promtool_accepts_the_exposition(self):
        exposition = http_get(self.metrics_url)
        r = subprocess.run(["promtool", "check", "metrics"], input=exposition,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout + r.stderr, "", "promtool lint findings")

    def test_promtool_accepts_the_shipped_files(self):
        r = subprocess.run(["promtool", "check", "config", PROMETHEUS_YML], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run(["promtool", "check", "rules", ALERTS_YML], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_step_slower_than_predicted_fires_only_beyond_25_percent(self):
        """promtool's rule unit test: 2 s steps against a 1.5 s prediction fire
        (33% slower), against 1.8 s (11%) they do not, nor without a prediction."""
        def job(name, predicted):
            labels = f'instance="node-1",job="strongholdd",job_name="{name}"'
            series = [
                # 60 s of steps per minute in 30 steps: 2 s each.
                {"series": f"stronghold_job_step_duration_seconds_sum{{{labels}}}",
                 "values": "0+60x60"},
                {"series": f"stronghold_job_step_duration_seconds_count{{{labels}}}",
                 "values": "0+30x60"},
            ]
            if predicted is not None:
                series.append({"series": f"stronghold_job_predicted_step_seconds{{{labels}}}",
                               "values": f"{predicted}x60"})
            return series
        fired = {"severity": "info", "instance": "node-1", "job": "strongholdd",
                 "job_name": "jobs/1"}
        with open(ALERTS_YML) as f:
            rule = next(r for g in yaml.safe_load(f)["groups"] for r in g["rules"]
                        if r.get("alert") == "StrongholdStepSlowerThanPredicted")
        annotations = {k: v.replace("{{ $labels.job_name }}", "jobs/1")
                       .replace("{{ $labels.instance }}", "node-1")
                       for k, v in rule["annotations"].items()}
        tests = {
            "rule_files": [os.path.abspath(ALERTS_YML)],
            "evaluation_interval": "1m",
            "tests": [{
                "interval": "1m",
                "input_series": job("jobs/1", 1.5) + job("jobs/2", 1.8) + job("jobs/3", None),
                "alert_rule_test": [
                    # Pending until the condition held for 15 minutes.
                    {"eval_time": "10m", "alertname": "StrongholdStepSlowerThanPredicted",
                     "exp_alerts": []},
                    {"eval_time": "40m", "alertname": "StrongholdStepSlowerThanPredicted",
                     "exp_alerts": [{"exp_labels": fired,
                                     "exp_annotations": annotations}]},
                ],
            }],
        }
        path = os.path.join(self.work, "alerts_test.yml")
        with open(path, "w") as f:
            yaml.safe_dump(tests, f)
        r = subprocess.run(["promtool", "test", "rules", path], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The test can fail: with the 1.8 s job expected to fire too, it does.
        tests["tests"][0]["alert_rule_test"][1]["exp_alerts"].append(
            {"exp_labels": dict(fired, job_name="jobs/2"),
             "exp_annotations": {k: v.replace("jobs/1", "jobs/2")
                                 for k, v in annotations.items()}})
        with open(path, "w") as f:
            yaml.safe_dump(tests, f)
        r = subprocess.run(["promtool", "test", "rules", path], capture_output=True,
                           text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
