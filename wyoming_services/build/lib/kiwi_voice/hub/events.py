"""The event bus: numbers every event, keeps it in the replay log, fans it out without blocking.

`publish()` is synchronous and never waits for a client: each WebSocket subscriber has a bounded
queue, and a subscriber that falls behind by more than its queue is cut off (it reconnects with
`?since=` and replays from the log). In-process listeners (`listen`) are called synchronously.
Call `publish` from the event loop's thread; other threads use `loop.call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from .event_payloads import EVENT_PAYLOADS
from .store import Store, StoredEvent

_LOGGER = logging.getLogger(__name__)

DEFAULT_LOG_CAPACITY = 10_000
DEFAULT_CLIENT_QUEUE = 1_000
_TRIM_EVERY = 100


@dataclass(frozen=True)
class PublishedEvent:
    seq: int
    event: str
    data: Mapping[str, Any]
    timestamp: float
    source: str
    frame: str  # the JSON text clients receive, serialized once for all of them

    @classmethod
    def from_stored(cls, stored: StoredEvent) -> PublishedEvent:
        frame = {
            "event": stored.event,
            "data": stored.data,
            "timestamp": stored.timestamp,
            "source": stored.source,
            "seq": stored.seq,
        }
        return cls(
            seq=stored.seq,
            event=stored.event,
            data=stored.data,
            timestamp=stored.timestamp,
            source=stored.source,
            frame=json.dumps(frame, ensure_ascii=False),
        )


class Subscription:
    """One consumer's bounded queue of frames, optionally filtered by event type."""

    def __init__(self, types: Collection[str] | None, max_queue: int) -> None:
        self.types = frozenset(types) if types is not None else None
        self._queue: asyncio.Queue[PublishedEvent] = asyncio.Queue(maxsize=max_queue)
        self.overflowed = asyncio.Event()
        self.max_queue = max_queue

    def wants(self, event: str) -> bool:
        return self.types is None or event in self.types

    def offer(self, published: PublishedEvent) -> None:
        if self.overflowed.is_set() or not self.wants(published.event):
            return
        try:
            self._queue.put_nowait(published)
        except asyncio.QueueFull:
            # Dropping one event silently would be a gap the client never learns about.
            self.overflowed.set()

    async def next(self) -> PublishedEvent:
        return await self._queue.get()


class EventBus:
    def __init__(
        self,
        store: Store,
        log_capacity: int = DEFAULT_LOG_CAPACITY,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._log_capacity = log_capacity
        self._clock = clock
        bounds = store.event_seq_bounds()
        self._last_seq = bounds[1] if bounds else 0
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[PublishedEvent], None]] = []

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: str, data: Mapping[str, Any], source: str) -> PublishedEvent:
        if event not in EVENT_PAYLOADS:
            raise ValueError(f"unknown event type {event!r}: declare it in event_payloads")
        self._last_seq += 1
        stored = StoredEvent(
            seq=self._last_seq,
            event=str(event),
            data=dict(data),
            timestamp=round(self._clock(), 6),
            source=source,
        )
        self._persist(stored)
        published = PublishedEvent.from_stored(stored)
        for subscription in self._subscriptions:
            subscription.offer(published)
        for listener in list(self._listeners):
            try:
                listener(published)
            except Exception:
                _LOGGER.exception("Event listener failed on %s", published.event)
        return published

    def _persist(self, stored: StoredEvent) -> None:
        try:
            self._store.append_event(stored)
            if stored.seq % _TRIM_EVERY == 0:
                self._store.trim_events(stored.seq - self._log_capacity + 1)
        except sqlite3.Error:
            # A full disk must not stop the assistant; live clients still get the event.
            _LOGGER.exception("Could not write event %s to the replay log", stored.seq)

    def subscribe(
        self, types: Collection[str] | None = None, max_queue: int = DEFAULT_CLIENT_QUEUE
    ) -> Subscription:
        subscription = Subscription(types, max_queue)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def listen(self, callback: Callable[[PublishedEvent], None]) -> Callable[[], None]:
        """Call `callback` for every event; returns the function that stops it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def oldest_replayable_seq(self) -> int:
        """The oldest seq still in the log (last_seq + 1 when the log is empty)."""
        bounds = self._store.event_seq_bounds()
        oldest = bounds[0] if bounds else self._last_seq + 1
        # Trimming runs every _TRIM_EVERY events; never promise more than the capacity.
        return max(oldest, self._last_seq - self._log_capacity + 1)

    def replay(self, after_seq: int, up_to_seq: int) -> list[PublishedEvent]:
        """Events with after_seq < seq <= up_to_seq that the log still holds, in order."""
        start = max(after_seq, self.oldest_replayable_seq() - 1)
        return [PublishedEvent.from_stored(e) for e in self._store.events_between(start, up_to_seq)]
