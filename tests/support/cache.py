"""The test cache: where offline models and speech clips are built once and reused.

Entries are directories or files named by a key that changes whenever their recipe changes.
Several pytest processes may ask for the same entry at once: a per-entry file lock keeps them
from building it twice, and building happens in a temporary path that is renamed into place,
so a reader sees a complete entry or none (also after a crash mid-build).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "KIWI_TEST_CACHE"
REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    """`$KIWI_TEST_CACHE`, or `.cache/models` in the checkout."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else REPO_ROOT / ".cache" / "models"


def recipe_key(*parts: str | bytes | Path) -> str:
    """A short hash of what an entry is made from (source files are hashed by content)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            digest.update(part.read_bytes())
        else:
            digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def cached_dir(name: str, build: Callable[[Path], None]) -> Path:
    """The cache directory `name`, made by `build(empty_dir)` if it is not there yet.

    `name` is `<family>-<key>`; building a new key removes the family's stale entries.
    """
    final = cache_dir() / name
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(final.parent / f".{name}.lock"):
        if final.is_dir():  # another process built it while we waited
            return final
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=final.parent))
        try:
            build(staging)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _remove_stale(final)
    return final


def _remove_stale(current: Path) -> None:
    family = current.name.rsplit("-", 1)[0]
    for sibling in current.parent.glob(f"{family}-*"):
        if sibling != current and sibling.name.rsplit("-", 1)[0] == family:
            shutil.rmtree(sibling, ignore_errors=True)


def cached_file(relative: str, build: Callable[[Path], None]) -> Path:
    """The cache file `relative`, made by `build(staging_path)` if it is not there yet.

    No lock: builders of files are deterministic, so two racing writers produce the same bytes
    and the atomic replace leaves one of them.
    """
    final = cache_dir() / relative
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging.", dir=final.parent) as staging_dir:
        staging = Path(staging_dir) / final.name
        build(staging)
        os.replace(staging, final)
    return final
