"""The hub's SQLite database (`kiwi.db` in the data dir): settings, hub state and the event log.

WAL mode, every write in a transaction. Two connections with different durability:
- `settings` and `state` (what the owner changed): synchronous=FULL, on disk when the call returns.
- `events` (the replay log, many small writes): synchronous=NORMAL. In WAL mode a committed
  transaction survives the process being killed (kill -9); only a power cut may lose the newest
  events. The database is never left corrupt either way.

All calls happen on the event loop's thread; each is a few microseconds to a fraction of a ms.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    namespace TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, key)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    timestamp REAL NOT NULL,
    source TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    event: str
    data: dict[str, Any]
    timestamp: float
    source: str


class Store:
    """Owns the connections to kiwi.db; other modules use its small typed methods."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._durable = self._connect("FULL")
        self._durable.executescript(_SCHEMA)
        self._durable.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._events = self._connect("NORMAL")

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        connection = sqlite3.connect(self.path, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={synchronous}")
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    def close(self) -> None:
        self._events.close()
        self._durable.close()

    @staticmethod
    @contextmanager
    def _transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    # ---- key/value namespaces (settings, hub state) -------------------------------------------

    def read_namespace(self, namespace: str) -> dict[str, Any]:
        rows = self._durable.execute(
            "SELECT key, value FROM kv WHERE namespace = ?", (namespace,)
        ).fetchall()
        return {key: json.loads(value) for key, value in rows}

    def write_namespace(
        self, namespace: str, values: Mapping[str, Any], removed: Iterable[str] = ()
    ) -> None:
        """Set and remove keys of a namespace in one transaction: all of it or none."""
        with self._transaction(self._durable) as connection:
            connection.executemany(
                "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value",
                [(namespace, key, json.dumps(value)) for key, value in values.items()],
            )
            connection.executemany(
                "DELETE FROM kv WHERE namespace = ? AND key = ?",
                [(namespace, key) for key in removed],
            )

    # ---- event log ----------------------------------------------------------------------------

    def append_event(self, event: StoredEvent) -> None:
        with self._transaction(self._events) as connection:
            connection.execute(
                "INSERT INTO events (seq, event, data, timestamp, source) VALUES (?, ?, ?, ?, ?)",
                (event.seq, event.event, json.dumps(event.data), event.timestamp, event.source),
            )

    def trim_events(self, keep_from_seq: int) -> None:
        with self._transaction(self._events) as connection:
            connection.execute("DELETE FROM events WHERE seq < ?", (keep_from_seq,))

    def event_seq_bounds(self) -> tuple[int, int] | None:
        """(oldest, newest) seq in the log, or None when it is empty."""
        row = self._events.execute("SELECT MIN(seq), MAX(seq) FROM events").fetchone()
        return None if row[0] is None else (int(row[0]), int(row[1]))

    def events_between(self, after_seq: int, up_to_seq: int) -> list[StoredEvent]:
        rows = self._events.execute(
            "SELECT seq, event, data, timestamp, source FROM events "
            "WHERE seq > ? AND seq <= ? ORDER BY seq",
            (after_seq, up_to_seq),
        ).fetchall()
        return [
            StoredEvent(
                seq=row[0], event=row[1], data=json.loads(row[2]), timestamp=row[3], source=row[4]
            )
            for row in rows
        ]
