"""Where a service's model files live: look in the data dirs first, download once otherwise.

Offline first: `find_*` only reads the local disk. Downloads go to the download dir through
a temporary name in the same folder and are renamed into place when complete, so a crash
or a failed transfer never leaves a half-written model where a later start would find it.
Failures are remembered (with a retry cool-down) so that `describe` can say what is
missing and a burst of requests does not hammer an unreachable server.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import ErrorCode, ServiceError

_LOGGER = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 30.0
RETRY_COOLDOWN_S = 30.0
_COPY_BLOCK = 256 * 1024


class DownloadError(ServiceError):
    """A model could not be fetched; `not_found` when the server said it has no such file."""

    def __init__(self, text: str, *, not_found: bool = False) -> None:
        super().__init__(ErrorCode.MODEL_MISSING, text)
        self.not_found = not_found


@dataclass(frozen=True)
class DownloadFailure:
    reason: str
    at_monotonic: float
    not_found: bool = False


class ProgressLog:
    """Logs a transfer's progress at most every `interval_s` seconds, plus start and end."""

    def __init__(self, label: str, total_bytes: int | None, interval_s: float = 2.0) -> None:
        self.label = label
        self.total_bytes = total_bytes
        self.interval_s = interval_s
        self.done_bytes = 0
        self._started = time.monotonic()
        self._last_logged = self._started
        size = f"{total_bytes / 1e6:.1f} MB" if total_bytes else "unknown size"
        _LOGGER.info("Downloading %s (%s)", label, size)

    def advance(self, byte_count: int) -> None:
        self.done_bytes += byte_count
        now = time.monotonic()
        if now - self._last_logged >= self.interval_s:
            self._last_logged = now
            _LOGGER.info("Downloading %s: %s", self.label, self._progress_text())

    def set_done_bytes(self, byte_count: int) -> None:
        self.advance(byte_count - self.done_bytes)

    def finish(self) -> None:
        elapsed = time.monotonic() - self._started
        _LOGGER.info("Downloaded %s: %.1f MB in %.1f s", self.label, self.done_bytes / 1e6, elapsed)

    def _progress_text(self) -> str:
        done_mb = self.done_bytes / 1e6
        if self.total_bytes:
            return f"{100 * self.done_bytes / self.total_bytes:.0f}% ({done_mb:.1f} MB)"
        return f"{done_mb:.1f} MB"


class DirectoryProgress:
    """Logs the bytes written into a folder, for downloaders without progress callbacks."""

    def __init__(self, folder: Path, progress: ProgressLog, interval_s: float = 1.0) -> None:
        self.folder = folder
        self.progress = progress
        self.interval_s = interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="download-progress", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self.progress.set_done_bytes(self._size())

    def _size(self) -> int:
        total = 0
        for path in self.folder.rglob("*"):
            try:
                total += path.stat().st_size if path.is_file() else 0
            except OSError:  # renamed or removed by the downloader meanwhile
                continue
        return total

    def _watch(self) -> None:
        while not self._stopped.wait(self.interval_s):
            self.progress.set_done_bytes(self._size())


class ModelStore:
    """Model lookup across ordered data dirs, and atomic downloads into the download dir."""

    def __init__(
        self,
        data_dirs: Sequence[Path],
        download_dir: Path,
        *,
        retry_cooldown_s: float = RETRY_COOLDOWN_S,
        download_timeout_s: float = DOWNLOAD_TIMEOUT_S,
    ) -> None:
        self.data_dirs = [Path(d) for d in data_dirs]
        self.download_dir = Path(download_dir)
        self.retry_cooldown_s = retry_cooldown_s
        self.download_timeout_s = download_timeout_s
        self._failures: dict[str, DownloadFailure] = {}
        self._failures_lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}

    @property
    def search_dirs(self) -> list[Path]:
        """Data dirs in order, then the download dir if it is not one of them."""
        dirs = list(self.data_dirs)
        if self.download_dir not in dirs:
            dirs.append(self.download_dir)
        return dirs

    # -- lookup (never touches the network) ------------------------------------------

    def find_file(self, relative: str | Path) -> Path | None:
        """The first non-empty file at `relative` in the search dirs."""
        for base in self.search_dirs:
            candidate = base / relative
            if candidate.is_file() and candidate.stat().st_size > 0:
                return candidate
        return None

    def find_dir(self, relative: str | Path, required: Iterable[str]) -> Path | None:
        """The first dir at `relative` that holds every file (or glob) in `required`."""
        patterns = list(required)
        for base in self.search_dirs:
            candidate = base / relative
            if candidate.is_dir() and all(any(candidate.glob(p)) for p in patterns):
                return candidate
        return None

    def list_files(self, pattern: str) -> list[Path]:
        """Files matching a glob across the search dirs; earlier dirs win on equal names."""
        found: dict[str, Path] = {}
        for base in self.search_dirs:
            if not base.is_dir():
                continue
            for path in sorted(base.glob(pattern)):
                if path.is_file() and not path.name.startswith("."):
                    found.setdefault(path.name, path)
        return list(found.values())

    # -- downloads --------------------------------------------------------------------

    def ensure(
        self, key: str, find: Callable[[], Path | None], download: Callable[[], Path]
    ) -> Path:
        """The local copy of model `key`, downloading it once if it is not on disk.

        Blocking: call from a worker thread. Concurrent callers wait for one download; a
        failure is remembered and repeated to callers inside the cool-down without a retry.
        """
        if (path := find()) is not None:
            return path
        with self.key_lock(key):
            if (path := find()) is not None:
                return path
            if (failure := self.recent_failure(key)) is not None:
                raise DownloadError(failure.reason, not_found=failure.not_found)
            try:
                path = download()
            except DownloadError as err:
                self.record_failure(key, err)
                raise
            self.clear_failure(key)
            return path

    def key_lock(self, key: str) -> threading.Lock:
        """One lock per model so that concurrent requests wait for a single download."""
        with self._failures_lock:
            return self._key_locks.setdefault(key, threading.Lock())

    def download_file(self, url: str, relative: str | Path, *, label: str | None = None) -> Path:
        """Fetch `url` to download_dir/`relative` atomically; raise `DownloadError` on failure."""
        destination = self.download_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        progress_label = label or str(relative)
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{destination.name}.", suffix=".part", dir=destination.parent
        )
        temp_path = Path(temp_name)
        try:
            with os.fdopen(handle, "wb") as out:
                self._fetch(url, out, progress_label)
            os.replace(temp_path, destination)
        finally:
            temp_path.unlink(missing_ok=True)
        return destination

    def _fetch(self, url: str, out: BinaryIO, label: str) -> None:
        try:
            with urllib.request.urlopen(url, timeout=self.download_timeout_s) as response:
                length = response.headers.get("Content-Length")
                progress = ProgressLog(label, int(length) if length and length.isdigit() else None)
                while block := response.read(_COPY_BLOCK):
                    out.write(block)
                    progress.advance(len(block))
                if progress.total_bytes is not None and progress.done_bytes != progress.total_bytes:
                    raise DownloadError(
                        f"download of {label} ended after {progress.done_bytes} of "
                        f"{progress.total_bytes} bytes"
                    )
                progress.finish()
        except urllib.error.HTTPError as err:
            raise DownloadError(
                f"download of {label} failed: HTTP {err.code} {err.reason} from {_host(url)}",
                not_found=err.code == 404,
            ) from err
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise DownloadError(f"download of {label} failed: {reason} ({_host(url)})") from err

    @contextmanager
    def staging_dir(self, relative: str | Path) -> Iterator[Path]:
        """A temp dir beside download_dir/`relative`, renamed onto it if the block succeeds.

        For downloaders that write a whole folder (a Hugging Face snapshot).
        """
        destination = self.download_dir / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
        )
        try:
            yield staging
            if destination.exists():
                # An older incomplete copy: the complete one replaces it.
                shutil.rmtree(destination)
            os.replace(staging, destination)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- failure memory ---------------------------------------------------------------

    def record_failure(self, key: str, error: DownloadError) -> None:
        with self._failures_lock:
            self._failures[key] = DownloadFailure(error.text, time.monotonic(), error.not_found)
        _LOGGER.error("Model %s is unavailable: %s", key, error.text)

    def clear_failure(self, key: str) -> None:
        with self._failures_lock:
            self._failures.pop(key, None)

    def failure(self, key: str) -> DownloadFailure | None:
        with self._failures_lock:
            return self._failures.get(key)

    def recent_failure(self, key: str) -> DownloadFailure | None:
        """The last failure of `key` if it is still inside the retry cool-down."""
        failure = self.failure(key)
        if failure and time.monotonic() - failure.at_monotonic < self.retry_cooldown_s:
            return failure
        return None


def _host(url: str) -> str:
    """Scheme and host only: URLs may carry tokens that must not reach the log."""
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}://{parsed.netloc.rsplit('@', 1)[-1]}"
