"""What the home looks like to Home Assistant: its entities, devices, areas, floors and labels,
read over HA's WebSocket API, so that a call by device, area, floor or label can be turned into
the entities it will touch (the way HA's own service helper does it).

A snapshot is read at once (one WebSocket, six commands) and kept for a few seconds, so a turn in
which Claude calls several actions reads it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kiwi_voice.hub.homeassistant import HomeAssistantClient, HomeAssistantSocket

_SNAPSHOT_SECONDS = 5.0


@dataclass(frozen=True)
class EntityInfo:
    entity_id: str
    device_id: str | None = None
    area_id: str | None = None  # its own area (None: the device's, if any)
    labels: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)  # from its state

    @property
    def domain(self) -> str:
        return self.entity_id.split(".", 1)[0]


@dataclass(frozen=True)
class DeviceInfo:
    device_id: str
    name: str
    area_id: str | None
    labels: tuple[str, ...]


@dataclass(frozen=True)
class AreaInfo:
    area_id: str
    name: str
    floor_id: str | None
    labels: tuple[str, ...]


@dataclass
class HomeState:
    entities: dict[str, EntityInfo]
    devices: dict[str, DeviceInfo]
    areas: dict[str, AreaInfo]
    floors: dict[str, str]  # floor id -> name
    labels: dict[str, str]  # label id -> name

    # ---- what a target names -------------------------------------------------------------------

    def area_of(self, entity: EntityInfo) -> str | None:
        """The entity's area: its own, else its device's (HA's rule)."""
        if entity.area_id:
            return entity.area_id
        device = self.devices.get(entity.device_id or "")
        return device.area_id if device is not None else None

    def entities_of_domain(self, domain: str | None) -> list[str]:
        """`entity_id: all`: every entity of `domain` (every entity for None)."""
        return sorted(e for e, info in self.entities.items() if domain in (None, info.domain))

    def entities_of_device(self, device_id: str) -> list[str]:
        return sorted(e for e, info in self.entities.items() if info.device_id == device_id)

    def entities_of_area(self, area_id: str) -> list[str]:
        return sorted(e for e, info in self.entities.items() if self.area_of(info) == area_id)

    def entities_of_floor(self, floor_id: str) -> list[str]:
        areas = [a for a, info in self.areas.items() if info.floor_id == floor_id]
        return sorted({e for area in areas for e in self.entities_of_area(area)})

    def entities_of_label(self, label_id: str) -> list[str]:
        """Entities with the label, of devices with it, and in areas with it."""
        found = {e for e, info in self.entities.items() if label_id in info.labels}
        for device in self.devices.values():
            if label_id in device.labels:
                found.update(self.entities_of_device(device.device_id))
        for area in self.areas.values():
            if label_id in area.labels:
                found.update(self.entities_of_area(area.area_id))
        return sorted(found)

    def names_of(self, entity_id: str) -> list[str]:
        """What a sensitive-action pattern is matched against besides the entity id and its
        domain: its area (id and name), floor, device name and labels (ids and names)."""
        info = self.entities.get(entity_id)
        if info is None:
            return []
        names: list[str] = []
        if (area_id := self.area_of(info)) is not None:
            names.append(area_id)
            if (area := self.areas.get(area_id)) is not None:
                names.append(area.name)
                if area.floor_id:
                    names += [area.floor_id, self.floors.get(area.floor_id, "")]
        if (device := self.devices.get(info.device_id or "")) is not None:
            names.append(device.name)
        for label in info.labels:
            names += [label, self.labels.get(label, "")]
        return [name.lower() for name in names if name]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _rows(result: Any) -> Iterable[dict[str, Any]]:
    return (row for row in result if isinstance(row, dict)) if isinstance(result, list) else ()


async def read_home_state(socket: HomeAssistantSocket) -> HomeState:
    # One command at a time: a WebSocket has one reader.
    states = await socket.command({"type": "get_states"})
    entities = await socket.command({"type": "config/entity_registry/list"})
    devices = await socket.command({"type": "config/device_registry/list"})
    areas = await socket.command({"type": "config/area_registry/list"})
    floors = await socket.command({"type": "config/floor_registry/list"})
    labels = await socket.command({"type": "config/label_registry/list"})
    attributes = {
        row["entity_id"]: dict(row.get("attributes") or {})
        for row in _rows(states)
        if _text(row.get("entity_id"))
    }
    known: dict[str, EntityInfo] = {
        entity_id: EntityInfo(entity_id, attributes=attrs)
        for entity_id, attrs in attributes.items()
    }
    for row in _rows(entities):
        if (entity_id := _text(row.get("entity_id"))) is None:
            continue
        known[entity_id] = EntityInfo(
            entity_id,
            device_id=_text(row.get("device_id")),
            area_id=_text(row.get("area_id")),
            labels=_strings(row.get("labels")),
            attributes=attributes.get(entity_id, {}),
        )
    return HomeState(
        entities=known,
        devices={
            row["id"]: DeviceInfo(
                row["id"],
                _text(row.get("name_by_user")) or _text(row.get("name")) or row["id"],
                _text(row.get("area_id")),
                _strings(row.get("labels")),
            )
            for row in _rows(devices)
            if _text(row.get("id"))
        },
        areas={
            row["area_id"]: AreaInfo(
                row["area_id"],
                _text(row.get("name")) or row["area_id"],
                _text(row.get("floor_id")),
                _strings(row.get("labels")),
            )
            for row in _rows(areas)
            if _text(row.get("area_id"))
        },
        floors={
            row["floor_id"]: _text(row.get("name")) or row["floor_id"]
            for row in _rows(floors)
            if _text(row.get("floor_id"))
        },
        labels={
            row["label_id"]: _text(row.get("name")) or row["label_id"]
            for row in _rows(labels)
            if _text(row.get("label_id"))
        },
    )


class HomeStateReader:
    """The latest snapshot, read again when it is older than a few seconds."""

    def __init__(
        self, homeassistant: HomeAssistantClient, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._homeassistant = homeassistant
        self._clock = clock
        self._cached: tuple[float, HomeState] | None = None

    def forget(self) -> None:
        self._cached = None

    async def read(self, socket: HomeAssistantSocket) -> HomeState:
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < _SNAPSHOT_SECONDS:
            return self._cached[1]
        state = await read_home_state(socket)
        self._cached = (now, state)
        return state
