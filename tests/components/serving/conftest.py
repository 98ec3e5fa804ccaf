"""Test models and a server-process harness for the serving tests.

The models are plain ``tf.Module``s with the signatures the serving code must
handle (single string input, two inputs of different dtypes, float/int multi
output, binary ``_bytes`` output). Outputs are tagged with the version number
so a hot swap is visible from the client side. Later fixtures can point the
same harness at pipeline-exported models.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[3]
MODEL_NAME = "tagger"


def _build_module(version: int):
    import tensorflow as tf

    tag = tf.constant(f"v{version}:")

    class TestModel(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
        def serve(self, inputs):
            return {"outputs": tf.strings.join([tag, tf.strings.upper(inputs)])}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt"),
                                      tf.TensorSpec([None], tf.int32, name="max_tokens")])
        def generate(self, prompt, max_tokens):
            return {"outputs": tf.strings.join([tag, prompt, "|", tf.strings.as_string(max_tokens)])}

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def numeric(self, x):
            return {"y": x * 2.0 + 0.1,
                    "n": tf.cast(tf.reduce_sum(x, axis=1), tf.int64) + tf.constant(version, tf.int64)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="data")])
        def binary(self, data):
            return {"data_bytes": data, "length": tf.strings.length(data)}

    return TestModel()


def save_test_model(export_dir: str | os.PathLike, version: int) -> None:
    """Write one SavedModel version (signatures: serving_default, generate, numeric, binary)."""
    import tensorflow as tf

    module = _build_module(version)
    tf.saved_model.save(module, str(export_dir), signatures={
        "serving_default": module.serve,
        "generate": module.generate,
        "numeric": module.numeric,
        "binary": module.binary,
    })


def publish_version(base_path: str | os.PathLike, version: int) -> Path:
    """Export into a temp folder under the base path, then rename it, as the pipeline exporter does."""
    base = Path(base_path)
    tmp = base / f"tmp-{version}-{uuid.uuid4().hex[:6]}"
    save_test_model(tmp, version)
    final = base / str(version)
    os.rename(tmp, final)
    return final


@pytest.fixture(scope="session")
def model_base_path(tmp_path_factory) -> Path:
    """A TF-Serving-layout base path holding version 1 of the test model."""
    base = tmp_path_factory.mktemp("models") / MODEL_NAME
    base.mkdir()
    publish_version(base, 1)
    return base


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A `components.serving.cli` subprocess on free loopback ports."""

    def __init__(self, args: list[str], log_path: Path):
        self.rest_port = free_port()
        self.grpc_port = free_port()
        self.log_path = log_path
        self._log = open(log_path, "wb")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "components.serving.cli",
             f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}", *args],
            cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_available(self, model: str, timeout: float = 90.0, version: int | None = None) -> dict:
        """Poll the status endpoint until a version (or the given one) is AVAILABLE."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                r = requests.get(f"{self.url}/v1/models/{model}", timeout=2)
                last = r.text
                if r.status_code == 200:
                    body = r.json()
                    for st in body["model_version_status"]:
                        if st["state"] == "AVAILABLE" and (version is None or st["version"] == str(version)):
                            return body
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"model {model} not available; last status {last}\n{self.log_text()}")

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def _server_factory(logdir: Path):
    """Yields start(args, model, wait) -> ServerProcess; every server is stopped afterwards."""
    servers: list[ServerProcess] = []

    def _start(args: list[str], model: str = MODEL_NAME, wait: bool = True) -> ServerProcess:
        server = ServerProcess(args, logdir / f"server-{len(servers)}.log")
        servers.append(server)
        if wait:
            server.wait_available(model)
        return server

    yield _start
    for server in servers:
        server.terminate()


@pytest.fixture
def start_server(tmp_path):
    """Factory: start_server(args, model) -> ServerProcess ready to serve `model`; killed at teardown."""
    yield from _server_factory(tmp_path)


@pytest.fixture(scope="module")
def module_server_factory(tmp_path_factory):
    """Like start_server, but shared by all tests of a module (servers cost seconds to start)."""
    yield from _server_factory(tmp_path_factory.mktemp("logs"))


@pytest.fixture(scope="session")
def publish():
    """publish(base_path, version): export a test-model version via temp folder + rename."""
    return publish_version
