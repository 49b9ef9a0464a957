"""Speaker profiles in SQLite (`speakers.db`): WAL journal, one transaction per change.

Every voice sample's embedding is kept (float32 blob, one row in `samples`), and the profile's
own embedding is the L2-normalised mean of its samples, recomputed in the same transaction
that adds a sample, so the two never disagree. A crash mid-write leaves the previous state.

The store also keeps the profile embeddings as one in-memory matrix for matching; it is
rebuilt after every change. All methods are blocking and serialised by one lock; the service
calls them from its single database worker thread.
"""

from __future__ import annotations

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

EMBEDDING_SIZE = 256  # resemblyzer's VoiceEncoder
SCHEMA_VERSION = 1
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
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_by_profile ON samples(profile_id);
"""
_PROFILE_COLUMNS = "id, name, priority, is_blocked, auto_learned, sample_count, last_seen"

Embedding = NDArray[np.float32]


class UnknownProfile(KeyError):
    pass


@dataclass(frozen=True)
class ProfileMatrix:
    """The profiles that have a voice, as rows of one matrix for cosine matching."""

    profiles: list[ProfileData]  # their last_seen is not kept current
    embeddings: NDArray[np.float32]  # (n, 256), rows L2-normalised


def new_profile_id() -> str:
    return f"spk_{secrets.token_hex(4)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _to_blob(embedding: Embedding) -> bytes:
    return np.asarray(embedding, dtype="<f4").reshape(EMBEDDING_SIZE).tobytes()


def _from_blob(blob: bytes) -> Embedding:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


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
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(f"BEGIN;{_SCHEMA}PRAGMA user_version={SCHEMA_VERSION};COMMIT;")
        self._matrix = self._load_matrix()

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

    def matrix(self) -> ProfileMatrix:
        with self._lock:
            return self._matrix

    # -- writes ------------------------------------------------------------------------

    def add_sample(
        self,
        embedding: Embedding,
        seconds: float,
        *,
        profile_id: str | None,
        name: str | None,
        priority: int | None,
        auto_learned: bool = False,
    ) -> ProfileData:
        """Add a voice sample to a profile, creating it when `profile_id` is None or `self`."""
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
                self._update_fields(profile_id, name=name, priority=priority)
            assert profile_id is not None
            self._db.execute(
                "INSERT INTO samples (profile_id, embedding, seconds, created_at) "
                "VALUES (?, ?, ?, ?)",
                (profile_id, _to_blob(embedding), seconds, _now()),
            )
            self._recompute_embedding(profile_id)
            profile = self._get(profile_id)
            self._matrix = self._load_matrix()
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
            self._matrix = self._load_matrix()
        return profile

    def delete(self, profile_id: str) -> None:
        with self._lock, self._transaction():
            cursor = self._db.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))
            if cursor.rowcount == 0:
                raise UnknownProfile(profile_id)
            self._matrix = self._load_matrix()

    def mark_seen(self, profile_id: str) -> None:
        # The matching matrix does not carry last_seen, so it needs no rebuild here.
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

    def _load_matrix(self) -> ProfileMatrix:
        rows = self._db.execute(
            f"SELECT {_PROFILE_COLUMNS}, embedding FROM profiles "
            "WHERE embedding IS NOT NULL ORDER BY id"
        ).fetchall()
        if not rows:
            return ProfileMatrix([], np.empty((0, EMBEDDING_SIZE), dtype=np.float32))
        matrix = np.stack([_from_blob(r["embedding"]) for r in rows])
        return ProfileMatrix([_profile(r) for r in rows], matrix)
