"""Who is talking to Kiwi right now: the last identified speaker, for a while."""

from __future__ import annotations

import time
from collections.abc import Callable

from .event_payloads import EventType
from .events import EventBus, PublishedEvent

ACTIVE_SPEAKER_SECONDS = 300.0


class ActiveSpeaker:
    def __init__(self, bus: EventBus, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._name: str | None = None
        self._seen_at = 0.0
        bus.listen(self._on_event)

    def _on_event(self, event: PublishedEvent) -> None:
        if event.event == EventType.SPEAKER_IDENTIFIED:
            self._name = str(event.data.get("name"))
            self._seen_at = self._clock()

    @property
    def name(self) -> str | None:
        if self._name is not None and self._clock() - self._seen_at > ACTIVE_SPEAKER_SECONDS:
            self._name = None
        return self._name
