"""Process lifecycle: clean SIGTERM shutdown, port conflicts."""

from __future__ import annotations

import signal
import socket

import grpc
import pytest
import requests

pytestmark = pytest.mark.slow

MODEL = "tagger"


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sigterm_stops_both_servers_with_exit_code_0(start_server, model_base_path):
    server = start_server([f"--model_name={MODEL}", f"--model_base_path={model_base_path}"])
    r = requests.post(f"{server.url}/v1/models/{MODEL}:predict", json={"instances": ["a"]}, timeout=30)
    assert r.status_code == 200
    with grpc.insecure_channel(server.grpc_target) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
    assert _port_open(server.rest_port) and _port_open(server.grpc_port)

    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0
    assert not _port_open(server.rest_port) and not _port_open(server.grpc_port)
    assert "Server stopped" in server.log_text()


def test_port_in_use_fails_fast(start_server, model_base_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The harness passes its own --rest_api_port first; argparse keeps the last one given.
        server = start_server([f"--model_name={MODEL}", f"--model_base_path={model_base_path}",
                               f"--rest_api_port={port}"], wait=False)
        assert server.proc.wait(60) == 1
        assert "Cannot bind REST API" in server.log_text()
