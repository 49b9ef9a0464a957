"""Checking model files against the index of the model root they were installed into.

A root installed by `kiwi_voice.model_pack` carries `kiwi-models.json`, the sha256 and size of
every file in it. A service that finds a file in such a root uses it only if it still matches: a
file that was truncated, overwritten or swapped is refused, with a message that names the file and
the hash it should have, and the service goes on with what else it has. Files in other folders
(the user's own models) have no index and are used as they are.

Hashing is done once per file version (path, size, mtime), so a service that looks a model up on
every `describe` pays for it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

_LOGGER = logging.getLogger(__name__)

INDEX_FILE = "kiwi-models.json"
# How far above a file its root's index may be (root/whisper/base/model.bin: three levels).
_MAX_DEPTH = 4
_BLOCK = 1024 * 1024


class ModelIntegrity:
    """Answers "may this file be used?" for files under an indexed model root."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._verdicts: dict[tuple[str, int, int], str | None] = {}

    def problem(self, path: Path) -> str | None:
        """None when `path` may be used; otherwise why not (a message for logs and describe)."""
        located = self._locate(path)
        if located is None:
            return None
        root, _key, entry = located
        try:
            stat = path.stat()
        except OSError as err:
            return f"{path}: cannot be read ({err})"
        version = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if version in self._verdicts:
                return self._verdicts[version]
        verdict = _check(path, stat.st_size, entry, root)
        with self._lock:
            self._verdicts[version] = verdict
        if verdict:
            _LOGGER.error("Refusing model file %s", verdict)
        return verdict

    def problem_in_dir(self, folder: Path) -> str | None:
        """The first problem with any indexed file inside `folder` (a model made of several)."""
        located_root = self._root_of(folder)
        if located_root is None:
            return None
        root, index = located_root
        prefix = _absolute(folder).relative_to(root).as_posix().rstrip("/") + "/"
        for key in sorted(index):
            if key.startswith(prefix) and (problem := self.problem(root / key)):
                return problem
        return None

    # -- index lookup -------------------------------------------------------------------------

    def _locate(self, path: Path) -> tuple[Path, str, dict[str, Any]] | None:
        located_root = self._root_of(path.parent)
        if located_root is None:
            return None
        root, index = located_root
        key = _absolute(path).relative_to(root).as_posix()
        entry = index.get(key)
        return None if entry is None else (root, key, entry)

    def _root_of(self, folder: Path) -> tuple[Path, dict[str, Any]] | None:
        """The nearest folder at or above `folder` with an index, and the index's files."""
        # Not resolved: a model linked into a root is checked as that root's file.
        current = _absolute(folder)
        for _ in range(_MAX_DEPTH):
            index_path = current / INDEX_FILE
            if index_path.is_file():
                files = self._read_index(index_path)
                return (current, files) if files is not None else None
            if current.parent == current:
                return None
            current = current.parent
        return None

    def _read_index(self, index_path: Path) -> dict[str, Any] | None:
        try:
            mtime = index_path.stat().st_mtime_ns
        except OSError:
            return None
        with self._lock:
            cached = self._indexes.get(index_path)
            if cached is not None and cached[0] == mtime:
                return cached[1]
        try:
            files = json.loads(index_path.read_text(encoding="utf-8"))["files"]
            if not isinstance(files, dict):
                raise TypeError("files is not an object")
        except (OSError, ValueError, KeyError, TypeError) as err:
            _LOGGER.error("Ignoring the model index %s: %s", index_path, err)
            return None
        with self._lock:
            self._indexes[index_path] = (mtime, files)
        return files


def _check(path: Path, size: int, entry: dict[str, Any], root: Path) -> str | None:
    expected_size = entry.get("size")
    expected_hash = str(entry.get("sha256", ""))
    repair = f"reinstall with `make models` or `python -m kiwi_voice.model_pack install {root}`"
    if expected_size is not None and size != expected_size:
        return (
            f"{path}: {size} bytes, expected {expected_size} with sha256 {expected_hash}; {repair}"
        )
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while block := source.read(_BLOCK):
            digest.update(block)
    if digest.hexdigest() != expected_hash:
        return f"{path}: sha256 is {digest.hexdigest()}, expected {expected_hash}; {repair}"
    return None


def _absolute(path: Path) -> Path:
    """Absolute and normalised, without following links."""
    return Path(os.path.abspath(path))
