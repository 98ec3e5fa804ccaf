"""Runs the REST and gRPC servers together and shuts both down on SIGTERM/SIGINT.

Model loading starts in background threads before the ports open, so status
endpoints can report LOADING (and predict answers 503) instead of the process
looking dead while a large model loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import uvicorn

from .config import ServerConfig
from .execution import ModelCallPool
from .grpc_service import create_grpc_server
from .http_protocol import protocol_class
from .metrics import Metrics
from .model_registry import ModelRegistry
from .predictor import Predictor
from .rest import create_app
from .warmup import run_warmup

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


def _return_large_frees_to_the_os() -> None:
    """Serve allocations of 1 MiB and more from their own mmap, so freeing them shrinks RSS.

    glibc raises its mmap threshold dynamically (up to 32 MiB) once large blocks are freed, after
    which big buffers come from the heap and stay there when freed: a rejected 10 MB gRPC request
    (5 M strings parsed by protobuf: ~225 MB of arrays) left RSS that much higher for good. A fixed
    threshold turns that off. Not glibc (musl, macOS): nothing to do.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    M_MMAP_THRESHOLD = -3
    if not mallopt(M_MMAP_THRESHOLD, 1 << 20):
        log.debug("mallopt(M_MMAP_THRESHOLD) failed")


def _configure_tensorflow(config: ServerConfig) -> None:
    import tensorflow as tf

    if config.intra_op_parallelism:
        tf.config.threading.set_intra_op_parallelism_threads(config.intra_op_parallelism)
    if config.inter_op_parallelism:
        tf.config.threading.set_inter_op_parallelism_threads(config.inter_op_parallelism)


def _watch_model_config_file(config: ServerConfig, registry: ModelRegistry, stop: threading.Event) -> None:
    """--model_config_file_poll_wait_seconds: re-read the file and apply a changed model list.
    A file that does not parse (or labels an unloaded version) is logged and skipped: the
    models being served stay as they are, as in TF Serving."""
    from .config import ConfigError
    from .config_files import check_version_labels, load_model_config_file

    static = tuple(m for m in config.models if m.name not in _file_model_names(config))
    last = _read_text(config.model_config_file)
    while not stop.wait(config.model_config_file_poll_wait_seconds):
        text = _read_text(config.model_config_file)
        if text == last:
            continue
        last = text
        try:
            models = load_model_config_file(config.model_config_file)
            check_version_labels(models, config.allow_version_labels_for_unavailable_models)
        except ConfigError as exc:
            log.error("Not applying the changed --model_config_file: %s", exc)
            continue
        log.info("--model_config_file changed; now serving %s", ", ".join(m.name for m in models))
        registry.reconfigure(models + static)


def _file_model_names(config: ServerConfig) -> set[str]:
    from .config import ConfigError
    from .config_files import load_model_config_file

    try:
        return {m.name for m in load_model_config_file(config.model_config_file)}
    except ConfigError:
        return set()


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


async def _serve(config: ServerConfig, app, rest_socket: socket.socket | None,
                 early_stop: threading.Event | None, pool: ModelCallPool, grpc_server) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if early_stop is not None and early_stop.is_set():
        stop.set()
    server = task = None
    grace = config.shutdown_grace_seconds
    if rest_socket is not None:
        server = _UvicornServer(uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", log_config=None,
            http=protocol_class(config.http_read_timeout_seconds, config.http_first_byte_timeout_seconds,
                                config.rest_max_connections),
            timeout_keep_alive=config.http_idle_timeout_seconds,
            # No limit_concurrency: it counted silent connections and then refused every request;
            # the protocol class caps connections and evicts idle ones instead.
            # In-flight model calls are cancelled after `grace`; a REST handler then answers at once.
            timeout_graceful_shutdown=grace + 0.5))
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
    # Stop both front ends and the model calls together, so shutdown takes ~grace seconds in
    # total: no new requests, in-flight ones get `grace` to finish, then their calls are cancelled.
    grpc_stopped = grpc_server.stop(grace) if grpc_server is not None else None
    if server is not None and not task.done():
        server.should_exit = True
    drained = loop.run_in_executor(None, pool.close, grace)
    if server is not None and not task.done():
        await task
    await drained
    if grpc_stopped is not None:
        await loop.run_in_executor(None, grpc_stopped.wait, 0.5)
    for w in waiters:
        w.cancel()
    return 0 if stop.is_set() else 1


def run(config: ServerConfig, early_stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code.

    ``early_stop`` is set by a signal handler installed before start-up, so a SIGTERM
    that arrives while TensorFlow imports still ends in a clean shutdown.
    """
    _return_large_frees_to_the_os()
    _configure_tensorflow(config)
    metrics = Metrics()
    registry = ModelRegistry(config.models, config.file_system_poll_wait_seconds,
                             warmup=run_warmup if config.enable_model_warmup else None)
    pool = ModelCallPool(config.max_concurrent_model_calls, config.max_queued_model_calls)
    if not pool.cancellable:
        log.warning("This TensorFlow has no cancellation hook; deadlines only stop calls that have not started")
    predictor = Predictor(registry, config.limits, metrics, config.batching, pool)
    executor = ThreadPoolExecutor(max_workers=config.rest_api_num_threads, thread_name_prefix="rest")
    grpc_server = None
    rest_socket = None
    watcher_stop = threading.Event()
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
                                                 config.limits.max_body_bytes, predictor, registry, metrics,
                                                 config.grpc_max_concurrent_rpcs, config.grpc_channel_arguments)
            except RuntimeError as exc:
                log.error("%s", exc)
                return 1
        for m in config.models:
            log.info("Serving model %s from base path %s", m.name, m.base_path)
        # Move everything allocated so far (TensorFlow, Keras, grpc, FastAPI: ~400k objects) out
        # of the cyclic GC's reach. A full collection otherwise walks them all, holding the GIL:
        # loading a version allocates enough to trigger several, and each stalled every request
        # for ~250-500 ms during a hot swap (a GIL probe: 274 ms -> 51 ms for a full collection).
        gc.freeze()
        registry.start()
        if config.model_config_file and config.model_config_file_poll_wait_seconds > 0:
            threading.Thread(target=_watch_model_config_file, args=(config, registry, watcher_stop),
                             name="model-config-file", daemon=True).start()
        if grpc_server is not None:
            grpc_server.start()
            log.info("Running gRPC ModelServer at %s:%d ...", config.host, config.port)
        if config.batching.enabled:
            b = config.batching
            log.info("Batching on: max_batch_size=%d batch_timeout_micros=%d num_batch_threads=%d",
                     b.max_batch_size, b.batch_timeout_micros, b.num_batch_threads)
        app = create_app(registry, predictor, metrics, config.limits, executor,
                         config.rest_api_timeout_in_ms / 1000 if config.rest_api_timeout_in_ms > 0 else None,
                         config.http_read_timeout_seconds,
                         config.monitoring.path if config.monitoring.enabled else None)
        exit_code = asyncio.run(_serve(config, app, rest_socket, early_stop, pool, grpc_server))
        return exit_code
    finally:
        # Shutdown must end within --shutdown_grace_seconds plus about a second (issue 20):
        # every wait below is short, and cli.py leaves the process without the interpreter's
        # slow teardown (joining busy executor threads, TensorFlow's destructors).
        watcher_stop.set()
        if grpc_server is not None:
            grpc_server.stop(grace=0).wait(0.5)
        pool.close(0)
        predictor.close()
        stopped = registry.stop(timeout=0.5)
        executor.shutdown(wait=False, cancel_futures=True)
        if rest_socket is not None:
            rest_socket.close()
        busy = pool.busy()
        log.info("Server stopped")
        if not stopped or busy:
            # A SavedModel load cannot be interrupted, nor a model call that ignored cancellation;
            # the interpreter would wait for those threads at exit (and tearing it down under a
            # thread inside TensorFlow can crash). SIGTERM must still end the process: leave now.
            log.warning("%s at shutdown; exiting immediately",
                        "A model was still loading" if not stopped else f"{busy} model call(s) still running")
            logging.shutdown()
            os._exit(exit_code)
