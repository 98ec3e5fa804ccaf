"""Load test for the TF-Serving-compatible server: req/s and p50/p99 latency.

Runs 1 and 32 concurrent REST clients against a server with batching off and
on, each cell bounded by a request count and a share of an overall time
budget. Servers are started here as subprocesses on free 127.0.0.1 ports.

    .venv/bin/python bench/serve_load.py                      # builds a small string model
    .venv/bin/python bench/serve_load.py --model_base_path=exports/translator --model_name=translator \
        --body='{"instances": ["hello"]}'
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]


def build_string_model(base: Path, steps: int = 0) -> None:
    """A small string->string SavedModel (version 1), like the serving tests' model.

    ``steps`` > 0 adds a fixed per-call cost (a loop of small matmuls, independent of the
    batch size), which is what makes batching pay off for e.g. autoregressive decoders.
    """
    sys.path.insert(0, str(REPO_ROOT))
    from pipeline import console

    console.setup()  # before TensorFlow: no C++ start-up log lines
    import tensorflow as tf

    class Tagger(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def serve(self, inputs):
            tag = tf.constant("v1:")
            if steps:
                _, acc = tf.while_loop(lambda i, a: i < steps,
                                       lambda i, a: (i + 1, tf.math.tanh(tf.matmul(a, a))),
                                       (tf.constant(0), tf.fill([64, 64], 0.01)))
                tag = tf.where(tf.reduce_sum(acc) > -1.0, tag, tf.constant("v?:"))
            return {"outputs": tf.strings.join([tag, tf.strings.upper(inputs)])}

    module = Tagger()
    tf.saved_model.save(module, str(base / "1"), signatures={"serving_default": module.serve})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model_name: str, base_path: str, extra: list[str], log_path: Path):
        self.rest_port, self.grpc_port = free_port(), free_port()
        self.model_name = model_name
        self.log = open(log_path, "wb")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "components.serving.cli", "--host=127.0.0.1",
             f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}",
             f"--model_name={model_name}", f"--model_base_path={base_path}", "--log_level=WARNING", *extra],
            cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.rest_port}"

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with code {self.proc.returncode}; see {self.log.name}")
            try:
                r = requests.get(f"{self.url}/v1/models/{self.model_name}", timeout=2)
                if r.ok and any(s["state"] == "AVAILABLE" for s in r.json()["model_version_status"]):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError("server did not become ready")

    def model_calls(self) -> float:
        text = requests.get(f"{self.url}/monitoring/prometheus/metrics", timeout=10).text
        return sum(float(v) for v in re.findall(
            rf'^model_calls_total{{[^}}]*model="{re.escape(self.model_name)}"[^}}]*}} (\S+)$', text, re.M))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def run_cell(url: str, body: bytes, clients: int, total: int, seconds: float) -> dict:
    """`clients` threads share `total` requests; stop early after `seconds`."""
    lock = threading.Lock()
    remaining = [total]
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def client() -> None:
        with requests.Session() as session:
            while time.monotonic() < deadline:
                with lock:
                    if remaining[0] <= 0:
                        return
                    remaining[0] -= 1
                t0 = time.perf_counter()
                try:
                    ok = session.post(url, data=body, timeout=60,
                                      headers={"Content-Type": "application/json"}).status_code == 200
                except requests.RequestException:
                    ok = False
                elapsed = time.perf_counter() - t0
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))] * 1000

    return {"ok": len(latencies), "errors": errors[0], "rps": len(latencies) / wall if wall else 0.0,
            "p50": pct(50), "p99": pct(99), "mean": statistics.fmean(latencies) * 1000 if latencies else 0.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_base_path", default="", help="TF Serving layout base path (default: build a small model)")
    p.add_argument("--model_name", default="bench")
    p.add_argument("--model_steps", type=int, default=0,
                   help="built model only: fixed per-call work (loop steps), to show batching gains")
    p.add_argument("--body", default="", help='predict JSON body (default: {"instances": ["hello world"]})')
    p.add_argument("--requests", type=int, default=400, help="requests per cell")
    p.add_argument("--max_seconds", type=float, default=60, help="time budget for all measurements")
    p.add_argument("--clients", default="1,32", help="comma-separated client counts")
    p.add_argument("--batching", default="off,on", help="comma-separated: off,on")
    p.add_argument("--batch_timeout_micros", type=int, default=1000)
    p.add_argument("--max_batch_size", type=int, default=32)
    args = p.parse_args(argv)

    clients = [int(c) for c in args.clients.split(",") if c]
    modes = [m.strip() for m in args.batching.split(",") if m.strip()]
    body = (args.body or json.dumps({"instances": ["hello world"]})).encode()
    cells = len(clients) * len(modes)
    tmp = tempfile.TemporaryDirectory(prefix="serve_load-")
    base = args.model_base_path
    if not base:
        base = os.path.join(tmp.name, args.model_name)
        os.makedirs(base)
        print("building a small string model ...", file=sys.stderr)
        build_string_model(Path(base), args.model_steps)

    rows = []
    budget_end = None
    try:
        for mode in modes:
            extra = ["--enable_batching", f"--max_batch_size={args.max_batch_size}",
                     f"--batch_timeout_micros={args.batch_timeout_micros}"] if mode == "on" else []
            server = Server(args.model_name, base, extra, Path(tmp.name) / f"server-{mode}.log")
            try:
                print(f"starting server (batching {mode}) ...", file=sys.stderr)
                server.wait_ready()
                url = f"{server.url}/v1/models/{args.model_name}:predict"
                warm = run_cell(url, body, 2, 20, 10)
                if warm["ok"] == 0:
                    raise RuntimeError(f"warm-up requests failed; see {server.log.name}")
                if budget_end is None:  # the time budget covers measurements, not TF start-up
                    budget_end = time.monotonic() + args.max_seconds
                for c in clients:
                    cells_left = cells - len(rows)
                    share = max(1.0, (budget_end - time.monotonic()) / cells_left)
                    calls_before = server.model_calls()
                    res = run_cell(url, body, c, args.requests, share)
                    res.update(batching=mode, clients=c, calls=server.model_calls() - calls_before)
                    rows.append(res)
                    print(f"  batching={mode} clients={c}: {res['rps']:.0f} req/s", file=sys.stderr)
            finally:
                server.stop()
    finally:
        tmp.cleanup()

    header = f"{'batching':<9}{'clients':>8}{'ok':>7}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'model calls':>13}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['batching']:<9}{r['clients']:>8}{r['ok']:>7}{r['errors']:>8}{r['rps']:>9.1f}"
              f"{r['p50']:>9.1f}{r['p99']:>9.1f}{int(r['calls']):>13}")
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
