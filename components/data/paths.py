"""Where raw corpus files come from: the local data folder, else upstream.

The product must work with no network at all, so the local folder (the tfds
"manual dir") always wins; the upstream download is only a fallback, and its
failure is turned into a `DataError` that tells the user where to put the file.
"""

from __future__ import annotations

import os
import pathlib
import socket
import urllib.parse
from typing import Mapping, NoReturn

from components.data.errors import DataError

DATA_DIR_ENV = "PIPELINE_DATA_DIR"
TFDS_DATA_DIR_ENV = "TFDS_DATA_DIR"

# tfds retries a failed connection 10 times with exponential backoff, which
# takes ~200 s to give up when there is no network. A single TCP connect with
# a short timeout answers "is the host reachable?" first.
_PROBE_TIMEOUT_S = 5.0


# The checkout's root: on CI and dev machines the shared corpora sit beside it (../shared/data).
CHECKOUT_ROOT = pathlib.Path(__file__).resolve().parents[2]


def tfds_data_dir(env: Mapping[str, str] | None = None) -> pathlib.Path:
    """tfds's own data folder: `$TFDS_DATA_DIR`, else ~/tensorflow_datasets (tfds's default).

    The one place that reads the variable: catalog datasets are prepared there and our raw
    corpora fall back to its downloads/manual folder."""
    env = os.environ if env is None else env
    return pathlib.Path(env.get(TFDS_DATA_DIR_ENV) or "~/tensorflow_datasets").expanduser()


def default_manual_dir(env: Mapping[str, str]) -> pathlib.Path:
    """tfds's own manual-download folder (`tfds_data_dir()`/downloads/manual): where a user
    without the shared corpora puts files by hand, and the folder the builders fall back to
    downloading from upstream when a file is not there."""
    return tfds_data_dir(env) / "downloads" / "manual"


def locate_data_dir(configured: str | os.PathLike | None, env: Mapping[str, str] | None = None,
                    checkout_root: os.PathLike | None = None) -> tuple[pathlib.Path, str]:
    """(raw-data folder, where the choice came from), in this order: `data.data_dir`,
    $PIPELINE_DATA_DIR, `<checkout>/../shared/data` if it exists, tfds's manual dir.

    A pure function of its arguments (defaults: os.environ and this checkout) so each
    branch is testable without touching the machine.
    """
    env = os.environ if env is None else env
    if configured:
        return pathlib.Path(configured).expanduser(), "data.data_dir"
    if env.get(DATA_DIR_ENV):
        return pathlib.Path(env[DATA_DIR_ENV]).expanduser(), f"${DATA_DIR_ENV}"
    shared = pathlib.Path(checkout_root or CHECKOUT_ROOT).resolve().parent / "shared" / "data"
    if shared.is_dir():
        return shared, "../shared/data beside the checkout"
    return default_manual_dir(env), "tfds manual dir; missing files are downloaded from upstream"


def resolve_data_dir(configured: str | os.PathLike | None, env: Mapping[str, str] | None = None,
                     checkout_root: os.PathLike | None = None) -> pathlib.Path:
    """The raw-data folder (see `locate_data_dir`)."""
    return locate_data_dir(configured, env, checkout_root)[0]


def _manual_dir(dl_manager) -> pathlib.Path | None:
    """The download manager's manual dir, or None if it has none.

    `dl_manager.manual_dir` raises (AssertionError) when the folder is missing
    or empty, which for us just means "not available locally".
    """
    try:
        return pathlib.Path(os.fspath(dl_manager.manual_dir))
    except (AssertionError, ValueError):
        configured = getattr(dl_manager, "_manual_dir", None)
        return pathlib.Path(os.fspath(configured)) if configured else None


def probe_url(url: str, timeout: float = _PROBE_TIMEOUT_S) -> str | None:
    """Return None if `url`'s host accepts a TCP connection, else the reason."""
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as e:
        return f"{type(e).__name__}: {e}"


def find_or_download(
    dl_manager,
    *,
    corpus: str,
    relpath: str,
    url: str,
    member: str | None = None,
) -> pathlib.Path:
    """Return a local path to the raw file `relpath` of `corpus`.

    Looks in `dl_manager.manual_dir / relpath` first and returns it without any
    network access. Otherwise downloads `url` through tfds (`member` names the
    file inside a zip archive, which is then extracted) and raises `DataError`
    naming the expected path and the URL if that fails.
    """
    manual = _manual_dir(dl_manager)
    expected = manual / relpath if manual else pathlib.Path(relpath)
    if expected.is_file():
        return expected

    def fail(reason: str, cause: BaseException | None = None) -> NoReturn:
        raise DataError(
            f"{corpus}: {expected} not found and download from {url} failed "
            f"({reason}). Put the file there, or set {DATA_DIR_ENV} / "
            "data.data_dir to a folder holding it."
        ) from cause

    reason = probe_url(url)
    if reason is not None:
        fail(reason)
    try:
        if member:
            path = pathlib.Path(os.fspath(dl_manager.download_and_extract(url)))
            path = path / member
        else:
            path = pathlib.Path(os.fspath(dl_manager.download(url)))
    except Exception as e:  # requests/tfds raise many unrelated types
        fail(f"{type(e).__name__}: {e}", e)
    if not path.is_file():
        fail(f"the downloaded archive has no {member!r}")
    return path
