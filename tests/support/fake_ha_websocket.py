"""The part of Home Assistant's WebSocket API (`/api/websocket`) that Kiwi's sensitive-action gate
reads, for the local fakes of Home Assistant (fake_homeassistant.py, hub_fake_ha.py).

The handshake is HA's (`auth_required`, `auth` with the access token, `auth_ok` /
`auth_invalid`); commands answer `{"id", "type": "result", "success", "result"}` in HA's shapes:
`get_states`, the entity/device/area/floor/label registries, `script/config`,
`automation/config` and `conversation/agent/homeassistant/debug`. The home is a `FakeHome`: empty
unless a test adds entities, devices, areas, labels, scripts or automations.

What the debug command answers mirrors the fakes' conversation agent: "turn on/off (the) X" is
HassTurnOn / HassTurnOff on the entity whose friendly name is X (or `light.<x>` when there is
none), "what is / is (the) X" HassGetState, anything else no match (null). Tests of the real
thing run Home Assistant itself (tests/ha).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

_TURN = re.compile(r"\bturn (on|off) (?:the )?(.+?)[.!?]*$", re.IGNORECASE)
_QUERY = re.compile(r"\b(?:what is|is) (?:the )?(.+?)[.!?]*$", re.IGNORECASE)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "thing"


@dataclass
class FakeHome:
    states: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)  # entity registry rows
    devices: list[dict[str, Any]] = field(default_factory=list)
    areas: list[dict[str, Any]] = field(default_factory=list)
    floors: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)
    scripts: dict[str, dict[str, Any]] = field(default_factory=dict)  # entity id -> config
    automations: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)  # every command received

    def add_entity(
        self,
        entity_id: str,
        name: str,
        *,
        area_id: str | None = None,
        device_id: str | None = None,
        labels: tuple[str, ...] = (),
        **attributes: Any,
    ) -> None:
        self.states.append(
            {
                "entity_id": entity_id,
                "state": "off",
                "attributes": {"friendly_name": name, **attributes},
            }
        )
        self.entities.append(
            {
                "entity_id": entity_id,
                "area_id": area_id,
                "device_id": device_id,
                "labels": list(labels),
                "platform": "fake",
            }
        )

    def entity_named(self, name: str) -> str | None:
        for state in self.states:
            if str(state["attributes"].get("friendly_name", "")).lower() == name.lower():
                return str(state["entity_id"])
        return None

    def debug(self, text: str) -> dict[str, Any] | None:
        if match := _TURN.search(text):
            name = match.group(2)
            entity = self.entity_named(name) or f"light.{slug(name)}"
            intent = "HassTurnOn" if match.group(1).lower() == "on" else "HassTurnOff"
            return {
                "intent": {"name": intent},
                "slots": {"name": name},
                "details": {},
                "targets": {entity: {"matched": True}},
                "match": True,
                "sentence_template": "turn on <name>",
                "unmatched_slots": {},
                "source": "builtin",
                "fuzzy_match": False,
            }
        if _QUERY.search(text):
            return {"intent": {"name": "HassGetState"}, "targets": {}, "match": True}
        return None

    def answer(self, command: dict[str, Any]) -> tuple[bool, Any]:
        """(success, result or error) of one command."""
        self.commands.append(command)
        kind = command.get("type")
        tables = {
            "get_states": self.states,
            "config/entity_registry/list": self.entities,
            "config/device_registry/list": self.devices,
            "config/area_registry/list": self.areas,
            "config/floor_registry/list": self.floors,
            "config/label_registry/list": self.labels,
        }
        if kind in tables:
            return True, tables[kind]
        if kind in ("script/config", "automation/config"):
            configs = self.scripts if kind == "script/config" else self.automations
            config = configs.get(str(command.get("entity_id")))
            if config is None:
                return False, {"code": "not_found", "message": "Entity not found"}
            return True, {"config": config}
        if kind == "conversation/agent/homeassistant/debug":
            return True, {"results": [self.debug(str(s)) for s in command.get("sentences", [])]}
        return False, {"code": "unknown_command", "message": "Unknown command."}


async def serve_websocket(request: web.Request, token: str, home: FakeHome) -> web.StreamResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    await socket.send_json({"type": "auth_required", "ha_version": "2026.2.3"})
    auth = await socket.receive_json()
    if auth.get("type") != "auth" or auth.get("access_token") != token:
        await socket.send_json({"type": "auth_invalid", "message": "Invalid access token"})
        await socket.close()
        return socket
    await socket.send_json({"type": "auth_ok", "ha_version": "2026.2.3"})
    async for message in socket:
        if message.type != WSMsgType.TEXT:
            break
        command = message.json()
        success, result = home.answer(command)
        answer: dict[str, Any] = {"id": command.get("id"), "type": "result", "success": success}
        if success:
            answer["result"] = result
        else:
            answer["error"] = result
        await socket.send_json(answer)
    return socket
