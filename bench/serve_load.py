"""Load test for the TF-Serving-compatible server: req/s and p50/p95/p99 latency.

Runs 1 and 32 concurrent REST clients against a server with batching off and
on, each cell bounded by a request count and a share of an overall time
budget, all in one run with both servers up, alternating between them in rounds (the machine
is shared: only ratios within a run compare). It
also reports what batching adds to a lone request (1-client p50, on minus off) and how
long SIGTERM takes with 8 clients still sending. Servers are started here as
subprocesses on free 127.0.0.1 ports.

    .venv/bin/python bench/serve_load.py                      # builds a small string model
    .venv/bin/python bench/serve_load.py --model_base_path=exports/translator --model_name=translator \
        --body='{"instances": ["hello"]}'

Hot-swap mode: clients keep predicting while new versions are published (copy of the
newest version, temp folder + rename, as the exporter does); reports the longest request
latency around each swap, with the server's warm-up off and on, side by side:

    .venv/bin/python bench/serve_load.py --hot_swap                # builds a random LM export
    .venv/bin/python bench/serve_load.py --hot_swap --model_base_path=exports/lm_shakespeare_word --model_name=lm

Memory mode: server RSS while 16 clients at once send rejected maximum-size bodies:

    .venv/bin/python bench/serve_load.py --memory 16
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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


def build_random_lm(base: Path, units: int = 256, layers: int = 2) -> None:
    """Version 1 of a word-level LM with random weights, written by the project's exporter
    (so it carries assets.extra/tf_serving_warmup_requests like a pipeline export)."""
    sys.path.insert(0, str(REPO_ROOT))
    from pipeline import console

    console.setup()  # before TensorFlow: no C++ start-up log lines
    import keras

    from pipeline.tasks.lm.config import LMModelConfig
    from pipeline.tasks.lm.data import fit_lm_vocabulary
    from pipeline.tasks.lm.export import export_language_model
    from pipeline.tasks.lm.model import build_language_model

    lines = ["First Citizen:", "Before we proceed any further, hear me speak.", "All:", "Speak, speak.",
             "ROMEO:", "But, soft! what light through yonder window breaks?"]
    vocab = fit_lm_vocabulary(lines, "whitespace")
    keras.utils.set_random_seed(1)
    cfg = LMModelConfig(embedding_dim=units // 2, units=units, layers=layers, dropout=0.0, tie_weights=False)
    export_language_model(build_language_model(cfg, len(vocab)), vocab, base)


LM_BODY = {"instances": [{"prompt": "ROMEO:", "max_tokens": 8, "temperature": 0.0, "top_k": 0}]}


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

    def sigterm_under_load(self, url: str, body: bytes, clients: int = 8) -> tuple[float, int]:
        """Seconds from SIGTERM to process exit while `clients` keep sending, and the exit code."""
        load = threading.Thread(target=run_cell, args=(url, body, clients, 10**9, 60), daemon=True)
        load.start()
        time.sleep(1.0)
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        elapsed = time.monotonic() - started
        load.join(70)
        return elapsed, code

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
    return _summary(latencies, errors[0], wall)


def _summary(latencies: list[float], errors: int, wall: float) -> dict:
    latencies = sorted(latencies)

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))] * 1000

    return {"ok": len(latencies), "errors": errors, "rps": len(latencies) / wall if wall else 0.0,
            "p50": pct(50), "p95": pct(95), "p99": pct(99), "latencies": latencies, "wall": wall,
            "mean": statistics.fmean(latencies) * 1000 if latencies else 0.0}


def _status(url: str, model: str) -> dict[str, str]:
    try:
        r = requests.get(f"{url}/v1/models/{model}", timeout=5)
        return {s["version"]: s["state"] for s in r.json().get("model_version_status", [])}
    except (requests.RequestException, ValueError):
        return {}


def _publish_copy(base: Path, source: Path) -> int:
    """Copy the newest version to the next number via a temp folder + rename (what the exporter does)."""
    version = max(int(p.name) for p in base.iterdir() if p.name.isdigit()) + 1
    tmp = base / f".tmp-bench-{version}"
    shutil.copytree(source, tmp)
    os.rename(tmp, base / str(version))
    return version


def run_hot_swap(server: "Server", base: Path, source: Path, body: bytes, clients: int, swaps: int,
                 settle: float) -> dict:
    """Clients predict continuously; `swaps` new versions are published one after another.

    For each swap: the longest latency of requests that were in flight at any time between the
    publish and `settle` seconds after the new version became AVAILABLE."""
    url = f"{server.url}/v1/models/{server.model_name}:predict"
    lock = threading.Lock()
    records: list[tuple[float, float, bool]] = []  # (start, end, ok)
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    ok = session.post(url, data=body, timeout=60,
                                      headers={"Content-Type": "application/json"}).status_code == 200
                except requests.RequestException:
                    ok = False
                with lock:
                    records.append((t0, time.monotonic(), ok))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    windows = []
    try:
        time.sleep(settle)  # steady state before the first swap
        for _ in range(swaps):
            published = time.monotonic()
            version = _publish_copy(base, source)
            while _status(server.url, server.model_name).get(str(version)) != "AVAILABLE":
                if time.monotonic() - published > 120:
                    raise TimeoutError(f"version {version} never became available; see {server.log.name}")
                time.sleep(0.05)
            available = time.monotonic()
            time.sleep(settle)
            windows.append((published, available, available + settle))
    finally:
        stop.set()
        for t in threads:
            t.join()
    baseline = sorted(e - s for s, e, ok in records if ok and e < windows[0][0]) if windows else []
    per_swap = []
    for i, (published, available, end) in enumerate(windows):
        # Each request counts once: for the swap in whose window it started (or, for the first
        # swap, that was still running when it was published).
        until = windows[i + 1][0] if i + 1 < len(windows) else end
        inside = [(e - s, ok) for s, e, ok in records if (s >= published or (i == 0 and e >= published)) and s < until]
        slowest = max(((e - s, s) for s, e, ok in records
                       if (s >= published or (i == 0 and e >= published)) and s < until), default=(0.0, 0.0))
        if os.environ.get("SERVE_LOAD_DEBUG"):
            print(f"  swap: load {available - published:.2f}s; slowest {slowest[0] * 1000:.0f} ms started "
                  f"{slowest[1] - published:+.2f}s after publish ({slowest[1] - available:+.2f}s vs available)",
                  file=sys.stderr)
        per_swap.append({"max_ms": max((d for d, _ in inside), default=0.0) * 1000,
                         "errors": sum(not ok for _, ok in inside), "load_s": available - published,
                         "requests": len(inside)})
    return {
        "baseline_p50": baseline[len(baseline) // 2] * 1000 if baseline else float("nan"),
        "baseline_max": baseline[-1] * 1000 if baseline else float("nan"),
        "swaps": per_swap,
        "errors": sum(not ok for _, _, ok in records),
    }


def hot_swap_main(args, body: bytes) -> int:
    tmp = tempfile.TemporaryDirectory(prefix="serve_swap-")
    source_base = Path(args.model_base_path) if args.model_base_path else None
    if source_base is None:
        source_base = Path(tmp.name) / "source"
        print("building a random LM export (2x256) ...", file=sys.stderr)
        build_random_lm(source_base)
        if not args.body:
            body = json.dumps(LM_BODY).encode()
    newest = max((p for p in source_base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    if not (newest / "assets.extra" / "tf_serving_warmup_requests").is_file():
        print(f"note: {newest} has no assets.extra/tf_serving_warmup_requests; warm-up has nothing to run",
              file=sys.stderr)
    rows = []
    try:
        for batching in [m.strip() for m in args.batching.split(",") if m.strip()]:
            for warmup in [m.strip() for m in args.warmup_modes.split(",") if m.strip()]:
                base = Path(tmp.name) / f"serve-{batching}-{warmup}"
                base.mkdir()
                shutil.copytree(newest, base / "1")
                extra = ["--file_system_poll_wait_seconds=0.2", f"--enable_model_warmup={warmup == 'on'}"]
                if batching == "on":
                    extra += ["--enable_batching", f"--max_batch_size={args.max_batch_size}",
                              f"--batch_timeout_micros={args.batch_timeout_micros}"]
                server = Server(args.model_name, str(base), extra, Path(tmp.name) / f"server-{batching}-{warmup}.log")
                try:
                    print(f"hot swap: batching {batching}, warm-up {warmup} ...", file=sys.stderr)
                    server.wait_ready()
                    warm = run_cell(f"{server.url}/v1/models/{args.model_name}:predict", body, 2, 10, 30)
                    if warm["ok"] == 0:
                        raise RuntimeError(f"requests fail; see {server.log.name}")
                    res = run_hot_swap(server, base, newest, body, args.swap_clients, args.swaps, args.swap_settle)
                    res.update(batching=batching, warmup=warmup)
                    rows.append(res)
                finally:
                    server.stop()
    finally:
        tmp.cleanup()
    header = (f"{'batching':<9}{'warm-up':<9}{'base p50 ms':>12}{'base max ms':>12}"
              f"{'max ms across each swap':>26}{'load+warm-up s':>18}{'errors':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        maxes = " / ".join(f"{s['max_ms']:.0f}" for s in r["swaps"])
        loads = " / ".join(f"{s['load_s']:.1f}" for s in r["swaps"])
        print(f"{r['batching']:<9}{r['warmup']:<9}{r['baseline_p50']:>12.1f}{r['baseline_max']:>12.1f}"
              f"{maxes:>26}{loads:>18}{r['errors']:>8}")
    return 0 if all(r["errors"] == 0 for r in rows) else 1


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_main(args) -> int:
    """RSS of the server while `--memory` clients at once send rejected maximum-size bodies
    (10 MB of `{"instances":[{},{},...]}`: 3.5 M empty objects, refused by --max_instances)."""
    tmp = tempfile.TemporaryDirectory(prefix="serve_mem-")
    base = args.model_base_path
    if not base:
        base = os.path.join(tmp.name, args.model_name)
        os.makedirs(base)
        build_string_model(Path(base))
    server = Server(args.model_name, base, [], Path(tmp.name) / "server.log")
    limit = 10 * 1024 * 1024
    body = b'{"instances":[' + b",".join([b"{}"] * ((limit - 20) // 3)) + b"]}"
    url = f"{server.url}/v1/models/{args.model_name}:predict"
    try:
        server.wait_ready()
        run_cell(url, json.dumps({"instances": ["hello"]}).encode(), 1, 5, 10)
        baseline = peak = _rss_mb(server.proc.pid)
        codes: list[int] = []

        def send() -> None:
            codes.append(requests.post(url, data=body, timeout=120).status_code)

        for _ in range(args.memory_rounds):
            threads = [threading.Thread(target=send) for _ in range(args.memory)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                peak = max(peak, _rss_mb(server.proc.pid))
                time.sleep(0.02)
        time.sleep(1.0)
        after = _rss_mb(server.proc.pid)
    finally:
        server.stop()
        tmp.cleanup()
    print(f"{args.memory_rounds} x {args.memory} concurrent rejected 10 MB bodies: "
          f"{codes.count(400)}/{len(codes)} answered 400; server RSS baseline {baseline:.0f} MB, "
          f"peak {peak:.0f} MB, 1 s after {after:.0f} MB")
    return 0 if codes.count(400) == len(codes) else 1


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
    p.add_argument("--batching", default=None, help="comma-separated: off,on (default: off,on; hot swap: off)")
    p.add_argument("--batch_timeout_micros", type=int, default=1000)
    p.add_argument("--max_batch_size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=4,
                   help="each cell is measured in this many slices, alternating between the servers")
    p.add_argument("--sigterm", action=argparse.BooleanOptionalAction, default=True,
                   help="after each server's cells, time SIGTERM while 8 clients keep sending")
    p.add_argument("--hot_swap", action="store_true",
                   help="measure latency across version swaps, server warm-up off vs on (batching: --batching)")
    p.add_argument("--warmup_modes", default="off,on", help="hot swap: server warm-up off,on")
    p.add_argument("--swaps", type=int, default=2, help="hot swap: versions published per server")
    p.add_argument("--swap_clients", type=int, default=8, help="hot swap: concurrent clients")
    p.add_argument("--swap_settle", type=float, default=3.0,
                   help="hot swap: seconds of steady traffic before the first swap and after each one")
    p.add_argument("--memory", type=int, default=0,
                   help="memory mode: this many clients at once send rejected 10 MB bodies; prints server RSS")
    p.add_argument("--memory_rounds", type=int, default=2, help="memory mode: rounds of --memory requests")
    args = p.parse_args(argv)
    if args.memory:
        return memory_main(args)
    if args.batching is None:
        args.batching = "off" if args.hot_swap else "off,on"
    if args.hot_swap:
        return hot_swap_main(args, (args.body or json.dumps({"instances": ["hello world"]})).encode())

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
    stops: list[tuple[str, float, int]] = []
    servers: dict[str, Server] = {}
    rounds = max(1, args.rounds)
    try:
        # All servers run at once and every cell is measured in `rounds` slices that alternate
        # between them, so batching off and on see the same machine load (the machine is shared).
        for mode in modes:
            extra = ["--enable_batching", f"--max_batch_size={args.max_batch_size}",
                     f"--batch_timeout_micros={args.batch_timeout_micros}"] if mode == "on" else []
            servers[mode] = Server(args.model_name, base, extra, Path(tmp.name) / f"server-{mode}.log")
        for mode, server in servers.items():
            print(f"starting server (batching {mode}) ...", file=sys.stderr)
            server.wait_ready()
            if run_cell(server.url + f"/v1/models/{args.model_name}:predict", body, 2, 20, 10)["ok"] == 0:
                raise RuntimeError(f"warm-up requests failed; see {server.log.name}")
        share = max(1.0, args.max_seconds / cells)  # seconds per cell
        for c in clients:
            parts: dict[str, list[dict]] = {mode: [] for mode in modes}
            calls = dict.fromkeys(modes, 0.0)
            for _ in range(rounds):
                for mode, server in servers.items():
                    before = server.model_calls()
                    parts[mode].append(run_cell(f"{server.url}/v1/models/{args.model_name}:predict", body, c,
                                                max(1, args.requests // rounds), share / rounds))
                    calls[mode] += server.model_calls() - before
            for mode in modes:
                res = _summary([x for part in parts[mode] for x in part["latencies"]],
                               sum(part["errors"] for part in parts[mode]), sum(part["wall"] for part in parts[mode]))
                res.update(batching=mode, clients=c, calls=calls[mode])
                rows.append(res)
                print(f"  batching={mode} clients={c}: {res['rps']:.0f} req/s", file=sys.stderr)
        if args.sigterm:
            for mode, server in servers.items():
                stops.append((mode, *server.sigterm_under_load(
                    f"{server.url}/v1/models/{args.model_name}:predict", body)))
    finally:
        for server in servers.values():
            server.stop()
        tmp.cleanup()

    header = (f"{'batching':<9}{'clients':>8}{'ok':>7}{'errors':>8}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
              f"{'p99 ms':>9}{'model calls':>13}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['batching']:<9}{r['clients']:>8}{r['ok']:>7}{r['errors']:>8}{r['rps']:>9.1f}"
              f"{r['p50']:>9.1f}{r['p95']:>9.1f}{r['p99']:>9.1f}{int(r['calls']):>13}")
    lone = {r["batching"]: r for r in rows if r["clients"] == 1}
    if "off" in lone and "on" in lone:
        print(f"batching adds to a lone request: p50 {lone['on']['p50'] - lone['off']['p50']:+.1f} ms, "
              f"p95 {lone['on']['p95'] - lone['off']['p95']:+.1f} ms "
              f"(--batch_timeout_micros={args.batch_timeout_micros})")
    for mode, seconds, code in stops:
        print(f"SIGTERM with 8 clients sending (batching {mode}): exit code {code} after {seconds:.2f} s "
              "(--shutdown_grace_seconds=3)")
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
