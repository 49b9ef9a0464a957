"""Speaker profiles in SQLite (`speakers.db`): WAL journal, one transaction per change.

Every voice sample's embedding is kept (float32 blob, one row in `samples`), marked when Kiwi
learned it by itself (`auto_learned`) rather than from an enrolment. The profile's own
embedding is the L2-normalised mean of its samples, recomputed in the same transaction that
adds a sample, so the two never disagree. A crash mid-write leaves the previous state.

`snapshot()` hands the matcher every profile with its samples; it is rebuilt after each change
and carries a version number, so the matcher rebuilds its index only when something changed.
All methods are blocking and serialised by one lock; the service calls them from its single
database worker thread.

A file that cannot be opened as a valid profile store at start (not SQLite, damaged pages,
malformed rows, or a schema from a newer Kiwi) is set aside by `open_store`: renamed to
`<name>.corrupt-<UTC time>` (never deleted, so it can be recovered by hand) and a new, empty
store takes its place; the service reports it in `describe`.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .protocol import DEFAULT_PRIORITY, SELF_PROFILE_ID, ProfileData

_LOGGER = logging.getLogger(__name__)

EMBEDDING_SIZE = 256  # resemblyzer's voice encoder
SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 3),
    is_blocked INTEGER NOT NULL DEFAULT 0,
    auto_learned INTEGER NOT NULL DEFAULT 0,
    embedding BLOB,
    sample_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_seen TEXT
);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
    embedding BLOB NOT NULL,
    seconds REAL NOT NULL,
    created_at TEXT NOT NULL,
    auto_learned INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samples_by_profile ON samples(profile_id);
"""
_PROFILE_COLUMNS = "id, name, priority, is_blocked, auto_learned, sample_count, last_seen"

Embedding = NDArray[np.float32]


class UnknownProfile(KeyError):
    pass


class CorruptStore(Exception):
    """The file is not a profile store this version can use."""


@dataclass(frozen=True)
class StoredVoice:
    """One profile with every sample of its voice."""

    profile: ProfileData  # last_seen is not kept current here
    embedding: Embedding  # (256,) mean of all samples, L2-normalised
    samples: NDArray[np.float32]  # (k, 256), oldest first
    auto_learned: NDArray[np.bool_]  # (k,) the samples Kiwi added by itself
    seconds: NDArray[np.float64]  # (k,) speech in each sample


@dataclass(frozen=True)
class StoreSnapshot:
    version: int  # changes with every write that changes a voice or a profile field
    voices: tuple[StoredVoice, ...]  # profiles that have samples, by id


@dataclass(frozen=True)
class SetAside:
    """A store file that could not be used at start and was renamed out of the way."""

    original: str
    moved_to: str
    reason: str
    at: str  # ISO-8601 UTC


def new_profile_id() -> str:
    return f"spk_{secrets.token_hex(4)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _to_blob(embedding: Embedding) -> bytes:
    return np.asarray(embedding, dtype="<f4").reshape(EMBEDDING_SIZE).tobytes()


def _from_blob(blob: bytes) -> Embedding:
    if not isinstance(blob, bytes) or len(blob) != 4 * EMBEDDING_SIZE:
        raise CorruptStore(f"an embedding blob has {len(blob)} bytes, not {4 * EMBEDDING_SIZE}")
    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    if not np.all(np.isfinite(vector)):
        raise CorruptStore("an embedding holds NaN or infinite values")
    return vector


def _normalised(vector: NDArray[np.float32]) -> Embedding:
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def _profile(row: sqlite3.Row) -> ProfileData:
    return ProfileData(
        id=row["id"],
        name=row["name"],
        priority=row["priority"],
        is_blocked=bool(row["is_blocked"]),
        auto_learned=bool(row["auto_learned"]),
        sample_count=row["sample_count"],
        last_seen=row["last_seen"],
    )


class ProfileStore:
    """Speaker profiles persisted in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        # One connection used from the database worker thread (and at start-up).
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            self._db.row_factory = sqlite3.Row
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self) -> None:
        """Check, migrate and load the store; a file that fails is left exactly as it was."""
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise CorruptStore(f"schema version {version} is from a newer Kiwi")
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise CorruptStore(f"SQLite integrity check failed: {check}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._version = 0
        # Migrating and reading every row happen in one transaction that is only committed
        # when all of it worked, so a store that fails is not modified before it is set aside.
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            columns = {r["name"] for r in self._db.execute("PRAGMA table_info(samples)")}
            if "auto_learned" not in columns:  # schema 1: every sample came from an enrolment
                self._db.execute(
                    "ALTER TABLE samples ADD COLUMN auto_learned INTEGER NOT NULL DEFAULT 0"
                )
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._snapshot = self._load_snapshot()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- reads -------------------------------------------------------------------------

    def list_profiles(self) -> list[ProfileData]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_PROFILE_COLUMNS} FROM profiles ORDER BY priority, name, id"
            ).fetchall()
        return [_profile(r) for r in rows]

    def get(self, profile_id: str) -> ProfileData:
        with self._lock:
            return self._get(profile_id)

    def snapshot(self) -> StoreSnapshot:
        with self._lock:
            return self._snapshot

    # -- writes ------------------------------------------------------------------------

    def add_samples(
        self,
        embeddings: list[Embedding],
        seconds: list[float],
        *,
        profile_id: str | None,
        name: str | None,
        priority: int | None,
        auto_learned: bool = False,
    ) -> ProfileData:
        """Add voice samples to a profile, creating it when `profile_id` is None or `self`."""
        with self._lock, self._transaction():
            exists = profile_id is not None and self._exists(profile_id)
            if profile_id is not None and not exists and profile_id != SELF_PROFILE_ID:
                raise UnknownProfile(profile_id)
            if not exists:
                profile_id = profile_id or new_profile_id()
                self._db.execute(
                    "INSERT INTO profiles (id, name, priority, auto_learned, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (
                        profile_id,
                        name or ("Kiwi" if profile_id == SELF_PROFILE_ID else profile_id),
                        DEFAULT_PRIORITY if priority is None else priority,
                        int(auto_learned),
                        _now(),
                    ),
                )
            else:
                assert profile_id is not None
                self._update_fields(profile_id, name=name, priority=priority)
            for embedding, length in zip(embeddings, seconds, strict=True):
                self._db.execute(
                    "INSERT INTO samples (profile_id, embedding, seconds, created_at, "
                    "auto_learned) VALUES (?, ?, ?, ?, ?)",
                    (profile_id, _to_blob(embedding), length, _now(), int(auto_learned)),
                )
            self._recompute_embedding(profile_id)
            profile = self._get(profile_id)
            self._snapshot = self._load_snapshot()
        return profile

    def update(
        self,
        profile_id: str,
        *,
        name: str | None = None,
        priority: int | None = None,
        is_blocked: bool | None = None,
    ) -> ProfileData:
        with self._lock, self._transaction():
            if not self._exists(profile_id):
                raise UnknownProfile(profile_id)
            self._update_fields(profile_id, name=name, priority=priority, is_blocked=is_blocked)
            profile = self._get(profile_id)
            self._snapshot = self._load_snapshot()
        return profile

    def delete(self, profile_id: str) -> None:
        with self._lock, self._transaction():
            cursor = self._db.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))
            if cursor.rowcount == 0:
                raise UnknownProfile(profile_id)
            self._snapshot = self._load_snapshot()

    def mark_seen(self, profile_id: str) -> None:
        # The snapshot does not carry last_seen, so it needs no rebuild here.
        with self._lock, self._transaction():
            self._db.execute("UPDATE profiles SET last_seen = ? WHERE id = ?", (_now(), profile_id))

    # -- internals (lock held) ---------------------------------------------------------

    def _exists(self, profile_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM profiles WHERE id = ?", (profile_id,)).fetchone()
        return row is not None

    def _get(self, profile_id: str) -> ProfileData:
        row = self._db.execute(
            f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE id = ?", (profile_id,)
        ).fetchone()
        if row is None:
            raise UnknownProfile(profile_id)
        return _profile(row)

    def _update_fields(
        self,
        profile_id: str,
        *,
        name: str | None = None,
        priority: int | None = None,
        is_blocked: bool | None = None,
    ) -> None:
        changes = {"name": name, "priority": priority, "is_blocked": is_blocked}
        for column, value in changes.items():
            if value is not None:
                # Column names come from the fixed dict above, never from the client.
                self._db.execute(
                    f"UPDATE profiles SET {column} = ? WHERE id = ?", (value, profile_id)
                )

    def _recompute_embedding(self, profile_id: str) -> None:
        blobs = self._db.execute(
            "SELECT embedding FROM samples WHERE profile_id = ?", (profile_id,)
        ).fetchall()
        samples = np.stack([_from_blob(b["embedding"]) for b in blobs])
        mean = _normalised(samples.mean(axis=0))
        self._db.execute(
            "UPDATE profiles SET embedding = ?, sample_count = ? WHERE id = ?",
            (_to_blob(mean), len(blobs), profile_id),
        )

    def _load_snapshot(self) -> StoreSnapshot:
        profiles = {
            row["id"]: (_profile(row), row["embedding"])
            for row in self._db.execute(
                f"SELECT {_PROFILE_COLUMNS}, embedding FROM profiles "
                "WHERE embedding IS NOT NULL ORDER BY id"
            )
        }
        samples: dict[str, list[sqlite3.Row]] = {profile_id: [] for profile_id in profiles}
        for row in self._db.execute(
            "SELECT profile_id, embedding, seconds, auto_learned FROM samples ORDER BY id"
        ):
            if row["profile_id"] in samples:
                samples[row["profile_id"]].append(row)
        voices = []
        for profile_id, (profile, blob) in profiles.items():
            rows = samples[profile_id]
            if not rows:
                raise CorruptStore(f"profile {profile_id} has an embedding but no samples")
            voices.append(
                StoredVoice(
                    profile=profile,
                    embedding=_from_blob(blob),
                    samples=np.stack([_from_blob(r["embedding"]) for r in rows]),
                    auto_learned=np.array([bool(r["auto_learned"]) for r in rows]),
                    seconds=np.array([float(r["seconds"]) for r in rows]),
                )
            )
        self._version += 1
        return StoreSnapshot(self._version, tuple(voices))


def _set_aside(path: Path, reason: str) -> SetAside:
    """Rename `path` (and its WAL files) to `<name>.corrupt-<time>`; nothing is deleted."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{suffix}")
    path.rename(target)
    for companion in ("-wal", "-shm"):
        extra = path.with_name(path.name + companion)
        if extra.exists():
            extra.rename(target.with_name(target.name + companion))
    return SetAside(str(path), str(target), reason, _now())


def open_store(path: Path) -> tuple[ProfileStore, SetAside | None]:
    """The profile store at `path`; a file that cannot be used is set aside for a new one."""
    try:
        return ProfileStore(path), None
    except (sqlite3.DatabaseError, CorruptStore) as err:
        reason = f"{type(err).__name__}: {err}"
    set_aside = _set_aside(path, reason)
    _LOGGER.error(
        "The speaker profile store %s could not be used (%s); it was set aside as %s and a "
        "new, empty store was created. Nothing was deleted.",
        path,
        reason,
        set_aside.moved_to,
    )
    return ProfileStore(path), set_aside
