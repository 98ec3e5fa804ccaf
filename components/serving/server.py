"""Runs the REST and gRPC servers together and shuts both down on SIGTERM/SIGINT.

Model loading starts in background threads before the ports open, so status
endpoints can report LOADING (and predict answers 503) instead of the process
looking dead while a large model loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from .config import ServerConfig
from .grpc_service import create_grpc_server
from .metrics import Metrics
from .model_registry import ModelRegistry
from .predictor import Predictor
from .rest import create_app

log = logging.getLogger(__name__)


class _UvicornServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its own shutdown, which would end the process with
    status -15; we own the signals instead so both servers stop and we exit 0."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def _bind(host: str, port: int) -> socket.socket:
    """Bind the REST socket ourselves so a taken port is a clean exit 1, not uvicorn's sys.exit."""
    family, _, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on such sockets, and without it
    # keep-alive responses stall ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _configure_tensorflow(config: ServerConfig) -> None:
    import tensorflow as tf

    if config.intra_op_parallelism:
        tf.config.threading.set_intra_op_parallelism_threads(config.intra_op_parallelism)
    if config.inter_op_parallelism:
        tf.config.threading.set_inter_op_parallelism_threads(config.inter_op_parallelism)


async def _serve(config: ServerConfig, app, rest_socket: socket.socket | None,
                 early_stop: threading.Event | None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if early_stop is not None and early_stop.is_set():
        stop.set()
    server = task = None
    if rest_socket is not None:
        server = _UvicornServer(uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", log_config=None,
            timeout_graceful_shutdown=10))
        task = asyncio.create_task(server.serve(sockets=[rest_socket]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            log.error("REST server failed to start")
            return 1
        log.info("Exporting HTTP/REST API at:%s:%d ...", config.host, config.rest_api_port)
    waiters = [asyncio.create_task(stop.wait())] + ([task] if task else [])
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if stop.is_set():
        log.info("Received shutdown signal; stopping")
    if server is not None and not task.done():
        server.should_exit = True
        await task
    for w in waiters:
        w.cancel()
    return 0 if stop.is_set() else 1


def run(config: ServerConfig, early_stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code.

    ``early_stop`` is set by a signal handler installed before start-up, so a SIGTERM
    that arrives while TensorFlow imports still ends in a clean shutdown.
    """
    _configure_tensorflow(config)
    metrics = Metrics()
    registry = ModelRegistry(config.models, config.file_system_poll_wait_seconds)
    predictor = Predictor(registry, config.limits, metrics, config.batching)
    executor = ThreadPoolExecutor(max_workers=config.rest_api_num_threads, thread_name_prefix="rest")
    grpc_server = None
    rest_socket = None
    exit_code = 1
    try:
        if config.rest_api_port:
            try:
                rest_socket = _bind(config.host, config.rest_api_port)
            except OSError as exc:
                log.error("Cannot bind REST API to %s:%d: %s", config.host, config.rest_api_port, exc)
                return 1
        if config.port:
            try:
                grpc_server = create_grpc_server(config.host, config.port, config.grpc_max_threads,
                                                 config.limits.max_body_bytes, predictor, registry, metrics)
            except RuntimeError as exc:
                log.error("%s", exc)
                return 1
        for m in config.models:
            log.info("Serving model %s from base path %s", m.name, m.base_path)
        registry.start()
        if grpc_server is not None:
            grpc_server.start()
            log.info("Running gRPC ModelServer at %s:%d ...", config.host, config.port)
        if config.batching.enabled:
            b = config.batching
            log.info("Batching on: max_batch_size=%d batch_timeout_micros=%d num_batch_threads=%d",
                     b.max_batch_size, b.batch_timeout_micros, b.num_batch_threads)
        app = create_app(registry, predictor, metrics, config.limits, executor,
                         config.rest_api_timeout_in_ms / 1000 if config.rest_api_timeout_in_ms > 0 else None)
        exit_code = asyncio.run(_serve(config, app, rest_socket, early_stop))
        return exit_code
    finally:
        if grpc_server is not None:
            grpc_server.stop(grace=5).wait(10)
        predictor.close()
        stopped = registry.stop()
        executor.shutdown(wait=False, cancel_futures=True)
        if rest_socket is not None:
            rest_socket.close()
        log.info("Server stopped")
        if not stopped:
            # A SavedModel load cannot be interrupted, and tearing the interpreter down under a
            # thread that is inside TensorFlow can crash at exit; leave without finalizers.
            log.warning("A model was still loading at shutdown; exiting immediately")
            logging.shutdown()
            os._exit(exit_code)
