"""Claude's Home Assistant tool: `call_home_assistant_service` {domain, service, entity_id, data}.

Offered to Claude only when Home Assistant is configured and the speaker may control the home
(routing decides). What a call touches is resolved through Home Assistant first; a sensitive one
waits for the owner's approval (home_guard.py: EXEC_APPROVAL_REQUESTED … EXEC_APPROVAL_RESOLVED)
and runs only when approved; the tool result tells Claude what happened, so its answer can say so.
"""

from __future__ import annotations

import logging
from typing import Any

from kiwi_voice.hub.routing.claude import ToolOutcome

from .ha_actions import HomeAssistantActions, InvalidServiceCall, service_call
from .home_guard import HomeGuard

_LOGGER = logging.getLogger(__name__)
TOOL_NAME = "call_home_assistant_service"
TOOL_DEFINITION: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": (
        "Call a Home Assistant action (service) to control the home, e.g. domain light, "
        "service turn_on, entity_id light.kitchen. Sensitive actions (locks, alarms, covers "
        "such as garage doors) wait for the owner's approval; the result says whether the "
        "action ran."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "domain": {"type": "string", "description": "e.g. light, switch, lock, cover"},
            "service": {"type": "string", "description": "e.g. turn_on, unlock, open_cover"},
            "entity_id": {
                "type": "string",
                "description": "The target entity, e.g. lock.front_door (comma-separate several)",
            },
            "target": {
                "type": "object",
                "description": (
                    "Other targets, as Home Assistant takes them: device_id, area_id, floor_id, "
                    "label_id (each an id or a list of ids)"
                ),
            },
            "data": {
                "type": "object",
                "description": 'Extra service data, e.g. {"brightness_pct": 50}',
            },
        },
        "required": ["domain", "service"],
    },
}


class HomeAssistantTools:
    def __init__(self, actions: HomeAssistantActions, guard: HomeGuard) -> None:
        self._actions = actions
        self._guard = guard

    def definitions(self) -> list[dict[str, Any]]:
        return [TOOL_DEFINITION] if self._actions.available else []

    async def run(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        if name != TOOL_NAME:
            return ToolOutcome(f"There is no tool named {name}.", is_error=True)
        try:
            call = service_call(
                arguments.get("domain"),
                arguments.get("service"),
                arguments.get("entity_id"),
                arguments.get("data"),
                arguments.get("target"),
            )
        except InvalidServiceCall as err:
            return ToolOutcome(f"Invalid call: {err}.", is_error=True)
        decision = await self._guard.decide(call)
        if not decision.allowed:
            return ToolOutcome(decision.refusal, is_error=True)
        outcome = await self._actions.call(call)
        return ToolOutcome(outcome.text, is_error=not outcome.ok)
