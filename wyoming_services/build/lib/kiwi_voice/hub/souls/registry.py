"""All souls the hub knows: the built-ins shipped in this package plus the user's folder.

A user soul with a built-in's id replaces it. The user folder is re-read when its files change,
so a new soul appears without a restart. Broken files are skipped with a warning.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .model import Soul, SoulFileError, parse_soul

_LOGGER = logging.getLogger(__name__)
BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_SOUL_ID = "default"


class SoulRegistry:
    def __init__(self, user_dir: Path | None, builtin_dir: Path = BUILTIN_DIR) -> None:
        self._user_dir = user_dir
        self._builtin = self._load_dir(builtin_dir, "builtin")
        if DEFAULT_SOUL_ID not in self._builtin:
            raise RuntimeError(f"built-in soul {DEFAULT_SOUL_ID!r} is missing from {builtin_dir}")
        self._fingerprint: tuple[tuple[str, int, int], ...] | None = None
        self._souls: dict[str, Soul] = {}
        self.problems: list[str] = []
        self.refresh()

    def _user_files(self) -> list[Path]:
        if self._user_dir is None or not self._user_dir.is_dir():
            return []
        return sorted(p for p in self._user_dir.glob("*.md") if p.is_file())

    def refresh(self) -> None:
        """Re-read the user folder if any file in it was added, removed or changed."""
        files = self._user_files()
        try:
            fingerprint = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        except OSError:
            fingerprint = None
        if fingerprint is not None and fingerprint == self._fingerprint:
            return
        self.problems = []
        user = self._load_files(files, "user")
        self._souls = {**self._builtin, **user}
        self._fingerprint = fingerprint

    def _load_dir(self, folder: Path, source: str) -> dict[str, Soul]:
        return self._load_files(sorted(folder.glob("*.md")), source)

    def _load_files(self, files: list[Path], source: str) -> dict[str, Soul]:
        souls: dict[str, Soul] = {}
        for path in files:
            try:
                soul = parse_soul(path, source)  # type: ignore[arg-type]
            except SoulFileError as err:
                _LOGGER.warning("Skipping soul file: %s", err)
                if source == "user":
                    self.problems.append(str(err))
                continue
            if soul.id in souls:
                _LOGGER.warning("Soul id %r defined twice; %s wins", soul.id, path.name)
            souls[soul.id] = soul
        return souls

    def all(self) -> list[Soul]:
        self.refresh()
        return sorted(self._souls.values(), key=lambda s: (s.id != DEFAULT_SOUL_ID, s.id))

    def get(self, soul_id: str) -> Soul | None:
        self.refresh()
        return self._souls.get(soul_id)

    def default(self) -> Soul:
        return self._souls.get(DEFAULT_SOUL_ID) or self._builtin[DEFAULT_SOUL_ID]
