#!/usr/bin/env python3
"""A real Prometheus server scrapes a coordinator and two workers while they run a job.

Through Prometheus's HTTP API, the generation tokens the coordinator's engines count
must equal the sum of usage.completion_tokens in the job's output file, and every
process's /metrics must pass `promtool check metrics`.

Exit 0 on success, 1 on failure, 77 (CTest's skip) when prometheus, promtool or the
default model is missing.

    scrape_job.py [--requests N] [--plot FILE.png]

--plot also draws the main panels of the Grafana dashboard from Prometheus's record of
the run (needs matplotlib); docs/monitoring.png was made so, with --requests 240.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

SKIP = 77


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_for(what, check, seconds):
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.2)
    raise SystemExit(f"FAIL: {what} (last: {last})")


def metric_value(text, name):
    """The sum of every sample of `name` in a /metrics text."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            seen = True
    return total if seen else None


def plot(prom_port, start, end, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(expr):
        url = (f"http://127.0.0.1:{prom_port}/api/v1/query_range?" +
               urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": 1}))
        out = []
        for r in json.loads(http_get(url, timeout=10))["data"]["result"]:
            out.append(([float(t) - start for t, _ in r["values"]],
                        [float(v) for _, v in r["values"]]))
        return out

    panels = [
        ("Throughput (tokens/s)", [
            ("generated", "sum(rate(conveyor_engine_generation_tokens_total[5s]))"),
            ("prompt", "sum(rate(conveyor_engine_prompt_tokens_total[5s]))")]),
        ("Scheduler: sequences", [
            ("running", "sum(conveyor_engine_sequences_running)"),
            ("waiting", "sum(conveyor_engine_sequences_waiting)")]),
        ("Job progress (requests)", [
            ("completed", 'sum(conveyor_job_requests{kind="completed"})'),
            ("total", 'sum(conveyor_job_requests{kind="total"})')]),
        ("Inter-token latency (s)", [
            ("p50", "histogram_quantile(0.5, sum by (le) "
                    "(rate(conveyor_engine_inter_token_latency_seconds_bucket[5s])))"),
            ("p99", "histogram_quantile(0.99, sum by (le) "
                    "(rate(conveyor_engine_inter_token_latency_seconds_bucket[5s])))")]),
        ("K/V cache in use (ratio)", [
            ("max over replicas", "max(conveyor_engine_kv_usage_ratio)")]),
        ("Step size", [
            ("tokens per step", "sum(rate(conveyor_engine_step_tokens_sum[5s])) / "
                                "sum(rate(conveyor_engine_step_tokens_count[5s]))"),
            ("sequences per step", "sum(rate(conveyor_engine_step_sequences_sum[5s])) / "
                                   "sum(rate(conveyor_engine_step_sequences_count[5s]))")]),
    ]
    fig, axes = plt.subplots(3, 2, figsize=(12, 10))
    for ax, (title, queries) in zip(axes.flat, panels):
        for label, expr in queries:
            for x, y in series(expr):
                ax.plot(x, y, label=label)
        ax.set_title(title)
        ax.set_xlabel("seconds")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle("Conveyor: a coordinator and two CPU workers running one job "
                 "(SmolLM2-135M, Prometheus scraping every second)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    print("plotted", path)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--plot")
    args = parser.parse_args()
    binary = os.environ.get("CONVEYOR_BINARY") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "bin", "conveyor")
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            print(f"skipped: {tool} is not installed (Debian package prometheus)")
            return SKIP
    home = os.environ.get("CONVEYOR_HOME", os.path.expanduser("~/.cache/conveyor"))
    if not os.path.exists(os.path.join(home, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")):
        print("skipped: the default model is not installed")
        return SKIP

    work = tempfile.mkdtemp(prefix="conveyor-prometheus-")
    procs = []

    def start(name, args):
        log = open(os.path.join(work, name + ".log"), "w")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=work,
                             start_new_session=True)
        procs.append((name, p))
        return p

    try:
        producers, workers_port = free_port(), free_port()
        coord_metrics, prom_port = free_port(), free_port()
        worker_metrics = [free_port(), free_port()]
        start("coordinator", [binary, "coordinator", "--model", "smollm2-135m-instruct",
                              "--listen", f"tcp://127.0.0.1:{producers}",
                              "--worker-listen", f"tcp://127.0.0.1:{workers_port}",
                              "--journal", os.path.join(work, "journal"),
                              "--metrics-port", str(coord_metrics)])
        for i, port in enumerate(worker_metrics):
            start(f"worker{i}", [binary, "worker", "--coordinator",
                                 f"tcp://127.0.0.1:{workers_port}", "--threads", "1",
                                 "--name", f"w{i}", "--metrics-port", str(port)])
        targets = [f"127.0.0.1:{p}" for p in [coord_metrics] + worker_metrics]
        with open(os.path.join(work, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: conveyor\n    static_configs:\n"
                    f"      - targets: {json.dumps(targets)}\n")
        start("prometheus", ["prometheus", "--config.file=" + os.path.join(work, "prometheus.yml"),
                             "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                             f"--web.listen-address=127.0.0.1:{prom_port}"])
        coordinator_metrics_url = f"http://127.0.0.1:{coord_metrics}/metrics"
        wait_for("two replicas live", lambda: metric_value(
            http_get(coordinator_metrics_url), "conveyor_cluster_replicas_live") == 2, 120)

        # Prometheus scrapes all three before the job starts, and every second during it.
        up_url = (f"http://127.0.0.1:{prom_port}/api/v1/query?query=" +
                  urllib.parse.quote("sum(up)"))
        wait_for("Prometheus scraping the three processes", lambda: json.loads(
            http_get(up_url))["data"]["result"][0]["value"][1] == "3", 60)

        requests = os.path.join(work, "in.jsonl")
        with open(requests, "w") as f:
            for i in range(args.requests):
                f.write(json.dumps({"custom_id": f"r{i}", "method": "POST",
                                    "url": "/v1/chat/completions",
                                    "body": {"model": "smollm2-135m-instruct",
                                             "messages": [{"role": "user",
                                                           "content": f"Count from {i} to {i + 9}."}],
                                             "max_tokens": 24, "temperature": 0}}) + "\n")
        output = os.path.join(work, "out.jsonl")
        job_start = time.time() - 5
        submit = subprocess.run([binary, "submit", "--coordinator", f"tcp://127.0.0.1:{producers}",
                                 "-i", requests, "-o", output, "--wait", "--timeout", "300"],
                                capture_output=True, text=True, cwd=work)
        if submit.returncode != 0:
            raise SystemExit(f"FAIL: submit exited {submit.returncode}: {submit.stderr}")
        lines = [json.loads(l) for l in open(output)]
        completion = sum(l["response"]["body"]["usage"]["completion_tokens"] for l in lines)
        if len(lines) != args.requests or completion == 0:
            raise SystemExit(f"FAIL: {len(lines)} result lines, {completion} completion tokens")

        # Prometheus has the final counts once a scrape after the job has landed.
        query = "sum(conveyor_engine_generation_tokens_total)"
        url = (f"http://127.0.0.1:{prom_port}/api/v1/query?query=" +
               urllib.parse.quote(query))

        def scraped_tokens():
            result = json.loads(http_get(url))["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        got = wait_for(f"Prometheus to report {completion} generation tokens",
                       lambda: scraped_tokens() == completion and completion, 30)
        print(f"Prometheus: {query} = {got:g}; output file: {completion} completion tokens")

        def instant(expr):
            result = json.loads(http_get(f"http://127.0.0.1:{prom_port}/api/v1/query?query=" +
                                         urllib.parse.quote(expr)))["data"]["result"]
            return float(result[0]["value"][1]) if result else None

        # The coordinator's written lines; the job's own series left with the job
        # (`submit --wait` releases it), so they are looked for over the last minutes.
        if instant("sum(conveyor_requests_finished_total)") != args.requests:
            raise SystemExit("FAIL: conveyor_requests_finished_total is not the job's lines")
        if instant('max_over_time(conveyor_job_requests{kind="total"}[5m])') != args.requests:
            raise SystemExit("FAIL: conveyor_job_requests{kind=total} never reached the job's lines")
        if instant('max_over_time(conveyor_job_requests{kind="total"}[5m]) '
                   'unless conveyor_job_requests') is None:
            raise SystemExit("FAIL: the released job's series are still exported")

        for port in [coord_metrics] + worker_metrics:
            text = http_get(f"http://127.0.0.1:{port}/metrics")
            check = subprocess.run(["promtool", "check", "metrics"], input=text,
                                   capture_output=True, text=True)
            if check.returncode != 0:
                raise SystemExit(f"FAIL: promtool check metrics on :{port}: {check.stdout}"
                                 f"{check.stderr}")
        print("promtool check metrics: the coordinator's and both workers' scrapes pass")
        if args.plot:
            time.sleep(3)  # the rates' last points
            plot(prom_port, job_start, time.time(), args.plot)
        return 0
    finally:
        for name, p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for name, p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if os.environ.get("KEEP_WORK"):
            print("work directory:", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
