"""``python -m pipeline serve`` entry point: flags in, exit code out."""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import threading

from components.runtime.allocator import prefer_bfc_allocator

from .config import ConfigError
from .flags import parse_args


def main(argv: list[str] | None = None) -> int:
    if "--version" in (sys.argv[1:] if argv is None else argv):
        return _print_version()
    try:
        config = parse_args(argv)
        prefer_bfc_allocator()  # before TensorFlow's first op: requests reuse freed regions (docs/benchmarks.md)
    except (ConfigError, ValueError) as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.registry_models:
        from .mlflow_source import SourceError

        try:
            config = _with_registry_models(config)
        except ConfigError as exc:
            print(f"serve: error: {exc}", file=sys.stderr)
            return 2
        except SourceError as exc:  # not registered, unreachable, download failed
            print(f"serve: error: {exc}", file=sys.stderr)
            return 1
    # A SIGTERM during the slow TensorFlow import / start-up still means "stop cleanly".
    early_stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: early_stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        from .server import run  # imports TensorFlow; keep --help and flag errors fast

        code = run(config, early_stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # The server has stopped; the interpreter's own teardown (joining executor threads that may
    # still be parsing a request, TensorFlow's destructors) took 3-6 s after "Server stopped"
    # under load. Nothing is left to clean up, so leave now: SIGTERM ends within the grace period.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _print_version() -> int:
    from importlib.metadata import PackageNotFoundError, version

    import tensorflow as tf

    try:
        api = version("tensorflow-serving-api")
    except PackageNotFoundError:
        api = "not installed"
    print(f"TensorFlow ModelServer (components.serving, TF Serving API {api})\nTensorFlow Library: {tf.__version__}")
    return 0


def _with_registry_models(config):
    """Resolve and download each --model models:/... URI; add it to the models to serve."""
    from components.tracking.uri import resolve_tracking_uri

    from .mlflow_source import DEFAULT_CACHE_DIR, fetch_model

    tracking_uri = resolve_tracking_uri(config.tracking_uri)
    cache = config.model_cache_dir or DEFAULT_CACHE_DIR
    models = list(config.models)
    for uri in config.registry_models:
        model = fetch_model(uri, cache, tracking_uri)
        if model.name in {m.name for m in models}:
            raise ConfigError(f"--model {uri}: a model named {model.name!r} is already configured")
        models.append(model)
    return dataclasses.replace(config, models=tuple(models))


if __name__ == "__main__":
    # Run directly (not via `python -m pipeline serve`): same quiet console, set before TensorFlow loads.
    from components import console

    console.setup(verbose="--verbose" in sys.argv)
    sys.exit(main([a for a in sys.argv[1:] if a != "--verbose"]))
