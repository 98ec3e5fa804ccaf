"""Version hot-swap under load, broken versions, and specific-version requests."""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
import requests

pytestmark = pytest.mark.slow

MODEL = "tagger"


def _status(server) -> dict[str, dict]:
    body = requests.get(f"{server.url}/v1/models/{MODEL}", timeout=10).json()
    return {s["version"]: s for s in body["model_version_status"]}


def _wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class _Client(threading.Thread):
    """Keeps predicting until stopped; records every answer and every failure."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.answers: list[str] = []
        self.failures: list[str] = []

    def run(self):
        with requests.Session() as session:
            while not self.stop.is_set():
                try:
                    r = session.post(self.url, json={"instances": ["x"]}, timeout=30)
                    if r.status_code == 200:
                        self.answers.append(r.json()["predictions"][0])
                    else:
                        self.failures.append(f"{r.status_code} {r.text}")
                except requests.RequestException as exc:
                    self.failures.append(repr(exc))


def test_new_version_hot_swaps_without_failures_and_broken_version_is_reported(
        tmp_path, start_server, publish):
    base = tmp_path / MODEL
    base.mkdir()
    publish(base, 1)
    (base / "not-a-version").mkdir()  # ignored: only integer folders are versions
    server = start_server([f"--model_name={MODEL}", f"--model_base_path={base}",
                           "--file_system_poll_wait_seconds=0.5"])
    client = _Client(f"{server.url}/v1/models/{MODEL}:predict")
    client.start()
    try:
        _wait_for(lambda: len(client.answers) >= 5, what="first answers")
        publish(base, 2)  # temp folder + rename, like the pipeline's exporter
        t0 = time.monotonic()
        _wait_for(lambda: client.answers and client.answers[-1] == "v2:X", what="version 2 answers")
        swap_seconds = time.monotonic() - t0
        seen = len(client.answers)
        _wait_for(lambda: len(client.answers) >= seen + 5, what="answers after the swap")
    finally:
        client.stop.set()
        client.join(30)
    assert client.failures == []
    assert set(client.answers) == {"v1:X", "v2:X"}
    first_v2 = client.answers.index("v2:X")
    assert all(a == "v2:X" for a in client.answers[first_v2:])  # no flapping back to v1
    assert swap_seconds < 10

    status = _status(server)
    assert status["2"]["state"] == "AVAILABLE"
    assert status["1"]["state"] == "END" and status["1"]["status"]["error_code"] == "OK"
    assert "not-a-version" not in str(status)
    body = requests.get(f"{server.url}/v1/models/{MODEL}", timeout=10).json()
    assert [s["version"] for s in body["model_version_status"]] == ["2", "1"]  # newest first
    r = requests.post(f"{server.url}/v1/models/{MODEL}/versions/2:predict", json={"instances": ["a"]}, timeout=10)
    assert r.json() == {"predictions": ["v2:A"]}
    r = requests.post(f"{server.url}/v1/models/{MODEL}/versions/1:predict", json={"instances": ["a"]}, timeout=10)
    assert r.status_code == 404  # unloaded after the swap

    # A broken version 3: shows END with an error; version 2 keeps serving.
    tmp = base / "tmp-3"
    shutil.copytree(base / "2", tmp)
    with open(tmp / "saved_model.pb", "r+b") as fh:
        fh.truncate(200)
    os.rename(tmp, base / "3")
    _wait_for(lambda: "3" in _status(server) and _status(server)["3"]["state"] == "END",
              what="version 3 failure in status")
    v3 = _status(server)["3"]
    assert v3["status"]["error_code"] != "OK" and v3["status"]["error_message"]
    r = requests.get(f"{server.url}/v1/models/{MODEL}/versions/3", timeout=10)
    assert r.status_code == 200 and r.json()["model_version_status"][0]["state"] == "END"
    time.sleep(1.2)  # a couple more polls: no reload loop, old version still serving
    r = requests.post(f"{server.url}/v1/models/{MODEL}:predict", json={"instances": ["a"]}, timeout=10)
    assert r.json() == {"predictions": ["v2:A"]}
    r = requests.post(f"{server.url}/v1/models/{MODEL}/versions/3:predict", json={"instances": ["a"]}, timeout=10)
    assert r.status_code == 404
    assert _status(server)["2"]["state"] == "AVAILABLE"
    assert server.log_text().count("Loading servable version {name: tagger version: 3} from") == 1
