"""Kiwi's own microphones as satellites (Home Assistant's `assist_satellite` entities).

A satellite is a microphone with a listener: the host microphone (`host`) and every browser
microphone that named its room in its hello (`room:<name>`). Unnamed browser tabs come and go
and are not satellites. The registry says which exist (GET /api/satellites, SATELLITES_CHANGED)
and finds the listener Home Assistant asks to listen (start_conversation, ask_question).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kiwi_voice.hub.event_payloads import EventType, SatelliteInfo, satellites_changed
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.pipeline.listener import Listener
from kiwi_voice.hub.playback import PlaybackOutputs

SOURCE = "satellites"
HOST = "host"


def room_satellite(room: str) -> str:
    return f"room:{room}"


@dataclass(frozen=True)
class Satellite:
    id: str
    name: str
    kind: Literal["host", "browser"]
    listener: Listener


class SatelliteRegistry:
    def __init__(self, bus: EventBus, outputs: PlaybackOutputs) -> None:
        self._bus = bus
        self._outputs = outputs
        self._by_id: dict[str, Satellite] = {}
        # Satellites whose replies Home Assistant plays elsewhere (a media player): kept by id,
        # so a room that reconnects keeps its choice (until the hub restarts; the integration
        # tells it again then).
        self._replies_elsewhere: set[str] = set()

    def replies_elsewhere(self, satellite_id: str) -> bool:
        """True: this satellite's turns are answered on a media player, not its own speaker."""
        return satellite_id in self._replies_elsewhere

    def set_replies(self, satellite_id: str, *, here: bool) -> None:
        if here:
            self._replies_elsewhere.discard(satellite_id)
        else:
            self._replies_elsewhere.add(satellite_id)
        if satellite_id in self._by_id:
            self._changed()

    def get(self, satellite_id: str) -> Satellite | None:
        return self._by_id.get(satellite_id)

    def add(self, satellite: Satellite) -> None:
        """A microphone joined; a second tab of the same room takes the room over."""
        self._by_id[satellite.id] = satellite
        self._changed()

    def remove(self, satellite_id: str, listener: Listener) -> None:
        """`listener`'s microphone left (only if it still is the satellite's)."""
        current = self._by_id.get(satellite_id)
        if current is not None and current.listener is listener:
            del self._by_id[satellite_id]
            self._changed()

    def describe(self) -> list[SatelliteInfo]:
        return [
            {
                "id": satellite.id,
                "name": satellite.name,
                "kind": satellite.kind,
                "can_play": bool(self._outputs.labels(satellite.id)),
                "replies": "elsewhere" if satellite.id in self._replies_elsewhere else "here",
            }
            for satellite in sorted(self._by_id.values(), key=lambda s: (s.kind, s.id))
        ]

    def _changed(self) -> None:
        self._bus.publish(EventType.SATELLITES_CHANGED, satellites_changed(self.describe()), SOURCE)
