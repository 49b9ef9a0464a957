"""What the pipeline shows in /api/status and /api/config: the latest turn's metrics and the
wake word engine that serves the configured wake word."""

from __future__ import annotations

from kiwi_voice.hub.event_payloads import EventType
from kiwi_voice.hub.events import EventBus, PublishedEvent
from kiwi_voice.hub.protocol import TurnMetrics, WakeEngineInfo


class PipelineStatus:
    def __init__(self, bus: EventBus) -> None:
        self.last_turn_metrics: TurnMetrics | None = None
        self.wake_engine: WakeEngineInfo | None = None  # None until the pipeline has chosen
        bus.listen(self._on_event)

    def _on_event(self, event: PublishedEvent) -> None:
        if event.event == EventType.TURN_METRICS:
            self.last_turn_metrics = dict(event.data)  # type: ignore[assignment]
