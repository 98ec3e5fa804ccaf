"""``python -m pipeline serve`` entry point: flags in, exit code out."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from .config import ConfigError, parse_args


def main(argv: list[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ConfigError as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A SIGTERM during the slow TensorFlow import / start-up still means "stop cleanly".
    early_stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: early_stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        from .server import run  # imports TensorFlow; keep --help and flag errors fast

        return run(config, early_stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
