"""Version discovery, polling, loading, hot-swapping and status, per model.

Mirrors TF Serving's FileSystemStoragePathSource + AspiredVersionsManager with
the availability-preserving policy: integer-named directories under the base
path are versions, the version policy picks the aspired ones, a new version is
published only after it has loaded, and the old one is dropped only once an
aspired version is available. Requests hold a reference to the Servable they
resolved, so in-flight calls finish on the old version after a swap.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

from tensorflow.core.lib.core import error_codes_pb2
from tensorflow_serving.apis import get_model_status_pb2

from components.savedmodel.layout import version_dirs

from .config import ModelConfig
from .errors import ServingError, invalid, not_found, unavailable
from .servable import Servable, load_servable

log = logging.getLogger(__name__)

_State = get_model_status_pb2.ModelVersionStatus


@dataclass(frozen=True)
class VersionStatus:
    state: str  # START | LOADING | AVAILABLE | UNLOADING | END
    error_code: str = "OK"
    error_message: str = ""


def _latest_request(name: str) -> str:
    return f"Servable not found for request: Latest({name})"


def _specific_request(name: str, version: int) -> str:
    return f"Servable not found for request: Specific({name}, {version})"


class ModelManager:
    """Owns one model: scans its base path, loads/unloads versions, answers lookups."""

    def __init__(self, config: ModelConfig, loader: Callable[[str, int, str], Servable] = load_servable,
                 warmup: Callable[[Servable], int] | None = None):
        self.config = config
        self._loader = loader
        self._warmup = warmup
        self._lock = threading.Lock()
        self._loaded: dict[int, Servable] = {}  # replaced, never mutated: readers need no lock
        self._status: dict[int, VersionStatus] = {}
        self._failed: dict[int, tuple] = {}  # version -> fingerprint of the files that failed to load
        self._base_missing_logged = False

    # ---- lookups (called from request threads) ----
    @property
    def name(self) -> str:
        return self.config.name

    def servable(self, version: int | None = None, label: str | None = None) -> Servable:
        if label is not None:
            if label not in self.config.version_labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = self.config.version_labels[label]
        loaded = self._loaded
        if version is None:
            if loaded:
                return loaded[max(loaded)]
            if self._any_loading():
                raise unavailable(f"{_latest_request(self.name)}; model {self.name} is still loading")
            raise not_found(_latest_request(self.name))
        if version in loaded:
            return loaded[version]
        with self._lock:
            status = self._status.get(version)
        if status is not None and status.state in ("START", "LOADING"):
            raise unavailable(f"{_specific_request(self.name, version)}; version {version} is still loading")
        raise not_found(_specific_request(self.name, version))

    def _any_loading(self) -> bool:
        with self._lock:
            return any(s.state in ("START", "LOADING") for s in self._status.values())

    def status(self, version: int | None = None, label: str | None = None):
        # TF Serving's GetModelStatus looks only at model_spec.version: a label (even an unknown
        # one) is ignored and every version is listed. Do the same, for REST and gRPC.
        del label
        with self._lock:
            statuses = dict(self._status)
        resp = get_model_status_pb2.GetModelStatusResponse()
        if version is not None:
            if version not in statuses:
                raise not_found(f"Could not find version {version} of model {self.name}")
            items = [(version, statuses[version])]
        else:
            if not statuses:
                raise not_found(f"Could not find any versions of model {self.name}")
            items = sorted(statuses.items(), reverse=True)  # TF Serving lists newest first
        for v, st in items:
            mvs = resp.model_version_status.add()
            mvs.version = v
            mvs.state = _State.State.Value(st.state)
            mvs.status.error_code = error_codes_pb2.Code.Value(st.error_code)
            mvs.status.error_message = st.error_message
        return resp

    def loaded_versions(self) -> list[int]:
        return sorted(self._loaded)

    def unload_all(self) -> None:
        with self._lock:
            versions = list(self._loaded)
            self._loaded = {}
            for v in versions:
                self._status[v] = VersionStatus("END")

    # ---- polling (called from this model's poller thread) ----
    def _set_status(self, version: int, status: VersionStatus) -> None:
        with self._lock:
            self._status[version] = status

    def _scan(self) -> dict[int, str] | None:
        versions = version_dirs(self.config.base_path)
        if versions is None:
            if not self._base_missing_logged:
                log.warning("Base path %s of model %s does not exist (yet); will keep polling",
                            self.config.base_path, self.name)
                self._base_missing_logged = True
            return None
        self._base_missing_logged = False
        return versions

    @staticmethod
    def _fingerprint(path: str) -> tuple:
        """Cheap identity of a version's files, so a failed version is retried only if it changes."""
        items = []
        for sub in ("", "variables"):
            try:
                with os.scandir(os.path.join(path, sub)) as it:
                    for e in it:
                        if e.is_file():
                            st = e.stat()
                            items.append((sub, e.name, st.st_size, st.st_mtime_ns))
            except OSError:
                pass
        return tuple(sorted(items))

    def poll_once(self, should_stop: Callable[[], bool] = lambda: False) -> None:
        versions = self._scan()
        if versions is None:
            return
        candidates = []
        for v, path in versions.items():
            if v in self._failed and self._failed[v] == self._fingerprint(path):
                continue  # same broken files as last time; don't reload on every poll
            candidates.append(v)
        aspired = self.config.version_policy.select(candidates)
        if not versions and self._loaded:
            log.warning("No versions of model %s found under %s; keeping the loaded ones",
                        self.name, self.config.base_path)

        for v in sorted(aspired - set(self._loaded), reverse=True):
            if should_stop():
                return
            self._load(v, versions[v])

        loaded = self._loaded
        stale = set(loaded) - aspired
        # Availability-preserving: only drop versions once an aspired one is serving.
        if stale and aspired & set(loaded):
            with self._lock:
                self._loaded = {v: s for v, s in loaded.items() if v not in stale}
                for v in stale:
                    self._status[v] = VersionStatus("END")
            for v in sorted(stale):
                log.info("Unloaded servable version {name: %s version: %d}", self.name, v)

    def _load(self, version: int, path: str) -> None:
        self._set_status(version, VersionStatus("LOADING"))
        log.info("Loading servable version {name: %s version: %d} from %s", self.name, version, path)
        fingerprint = self._fingerprint(path)
        try:
            servable = self._load_and_warm_up(version, path)
        except ServingError as exc:
            self._fail(version, fingerprint, exc.code, exc.message)
            return
        except Exception as exc:  # a loader bug must not kill the poller thread
            self._fail(version, fingerprint, "UNKNOWN", f"{type(exc).__name__}: {exc}")
            return
        self._failed.pop(version, None)
        with self._lock:
            loaded = dict(self._loaded)
            loaded[version] = servable
            self._loaded = loaded
            self._status[version] = VersionStatus("AVAILABLE")
        log.info("Successfully loaded servable version {name: %s version: %d}", self.name, version)

    def _load_and_warm_up(self, version: int, path: str) -> Servable:
        servable = self._loader(self.name, version, path)
        if self._warmup is not None:
            # Before the version is published: the first calls of a freshly loaded SavedModel
            # are slow (graph optimisation, kernel set-up), and they must not hit clients.
            started = time.monotonic()
            count = self._warmup(servable)
            if count:
                log.info("Warmed up servable version {name: %s version: %d} with %d requests in %.2fs",
                         self.name, version, count, time.monotonic() - started)
        return servable

    def _fail(self, version: int, fingerprint: tuple, code: str, message: str) -> None:
        self._failed[version] = fingerprint
        self._set_status(version, VersionStatus("END", code, message))
        log.error("Loading servable version {name: %s version: %d} failed: %s: %s",
                  self.name, version, code, message)


class ModelRegistry:
    """All configured models, each polled by its own thread; the set can change at run time
    (``reconfigure``, from a re-read --model_config_file)."""

    def __init__(self, models, poll_wait_seconds: float = 1.0,
                 loader: Callable[[str, int, str], Servable] = load_servable,
                 warmup: Callable[[Servable], int] | None = None):
        self._loader = loader
        self._warmup = warmup
        self._managers = {m.name: ModelManager(m, loader, warmup) for m in models}  # replaced, never mutated
        self._poll_wait = poll_wait_seconds
        self._stop = threading.Event()
        self._started = False
        self._threads: list[threading.Thread] = []

    def model_names(self) -> list[str]:
        return list(self._managers)

    def manager(self, name: str) -> ModelManager | None:
        return self._managers.get(name)

    def servable(self, name: str, version: int | None = None, label: str | None = None) -> Servable:
        mgr = self._managers.get(name)
        if mgr is None:
            if label is not None:
                raise invalid(f"Unrecognized servable version label: {label}")
            raise not_found(_latest_request(name) if version is None else _specific_request(name, version))
        return mgr.servable(version, label)

    def status(self, name: str, version: int | None = None, label: str | None = None):
        mgr = self._managers.get(name)
        if mgr is None:
            if version is not None:
                raise not_found(f"Could not find version {version} of model {name}")
            raise not_found(f"Could not find any versions of model {name}")
        return mgr.status(version, label)

    def reconfigure(self, models) -> None:
        """Serve exactly ``models`` from now on, as TF Serving's ReloadConfig does: new models start
        loading, removed ones are unloaded (in-flight requests finish on the servable they hold),
        a kept model takes its new version policy and labels at its next poll (a changed base
        path makes it a new model)."""
        current = self._managers
        managers = {}
        for m in models:
            mgr = current.get(m.name)
            if mgr is not None and mgr.config.base_path == m.base_path:
                mgr.config = m
            else:
                mgr = ModelManager(m, self._loader, self._warmup)
            managers[m.name] = mgr
        self._managers = managers
        for name, mgr in current.items():
            if managers.get(name) is not mgr:
                mgr.unload_all()
                log.info("Model %s removed from the config; unloaded", name)
        if self._started:
            for name, mgr in managers.items():
                if current.get(name) is not mgr:
                    self._start_poller(mgr)

    def start(self) -> None:
        self._started = True
        for mgr in self._managers.values():
            self._start_poller(mgr)

    def _start_poller(self, mgr: ModelManager) -> None:
        t = threading.Thread(target=self._poll_loop, args=(mgr,), name=f"poll-{mgr.name}", daemon=True)
        t.start()
        self._threads.append(t)

    def _poll_loop(self, mgr: ModelManager) -> None:
        def gone() -> bool:
            return self._stop.is_set() or self._managers.get(mgr.name) is not mgr

        while not gone():
            try:
                mgr.poll_once(gone)
            except Exception:  # keep polling whatever happens on the file system
                log.exception("Polling model %s failed", mgr.name)
            if self._poll_wait <= 0:  # TF Serving: 0 means poll exactly once
                return
            self._stop.wait(self._poll_wait)
        if not self._stop.is_set():
            mgr.unload_all()  # removed while it was loading a version

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop polling; False if a poller is still inside a (non-interruptible) model load."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)
