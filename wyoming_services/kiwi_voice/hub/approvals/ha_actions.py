"""Home Assistant actions (services) through HA's REST API, and which of them are sensitive.

`POST <ha>/api/services/<domain>/<service>` with `{"entity_id": [...], "area_id": [...], ...,
**data}` and the same token as the conversation API (`HomeAssistantClient.target()`). Names are
checked before they go into a URL path. Which calls are sensitive is decided by what they touch
(targets.py, sensitivity.py), not here. A voice's turn calls through the integration's
`kiwi/call_service` instead, so HA runs it as the speaker's linked user (homeassistant.py).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import aiohttp

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.homeassistant import (
    CALL_SERVICE_AS_COMMAND,
    HomeAssistantClient,
    Requester,
    current_requester,
)

from .model import TARGET_KEYS, ServiceCall

_LOGGER = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_ENTITY_ID = re.compile(r"^[a-z0-9_]{1,64}\.[a-z0-9_]{1,255}$")
_TARGET_ID = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
ENTITY_ID_ALL = ("all", "none")  # HA's special entity_id values
_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=3)


class InvalidServiceCall(ValueError):
    pass


def _ids(value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value if item.strip())
    raise InvalidServiceCall(f"{key}: expected an id or a list of ids")


def service_call(
    domain: Any, service: Any, entity_id: Any = None, data: Any = None, target: Any = None
) -> ServiceCall:
    """A checked ServiceCall from a tool's arguments; raises InvalidServiceCall.

    Target keys (entity_id, device_id, area_id, floor_id, label_id) count wherever they are
    given: as arguments, in `target`, or in `data` (HA reads them from the data too), so that
    the check of what a call touches sees all of them."""
    if not isinstance(domain, str) or not _NAME.match(domain):
        raise InvalidServiceCall(f"domain: {domain!r} is not a Home Assistant domain")
    if not isinstance(service, str) or not _NAME.match(service):
        raise InvalidServiceCall(f"service: {service!r} is not a service name")
    if data is None:
        data = {}
    if target is None:
        target = {}
    if not isinstance(data, dict):
        raise InvalidServiceCall("data: expected an object")
    if not isinstance(target, dict):
        raise InvalidServiceCall("target: expected an object")
    data = dict(data)
    unknown = set(target) - {"entity_id", *TARGET_KEYS}
    if unknown:
        raise InvalidServiceCall(f"target: unknown keys {sorted(unknown)}")
    entity_ids = [
        *_ids(entity_id, "entity_id"),
        *_ids(target.get("entity_id"), "target.entity_id"),
        *_ids(data.pop("entity_id", None), "data.entity_id"),
    ]
    for entity in entity_ids:
        if entity not in ENTITY_ID_ALL and not _ENTITY_ID.match(entity):
            raise InvalidServiceCall(f"entity_id: {entity!r} is not an entity id")
    targets: dict[str, tuple[str, ...]] = {}
    for key in TARGET_KEYS:
        ids = (*_ids(target.get(key), f"target.{key}"), *_ids(data.pop(key, None), f"data.{key}"))
        for one in ids:
            if not _TARGET_ID.match(one):
                raise InvalidServiceCall(f"{key}: {one!r} is not an id")
        if ids:
            targets[key] = tuple(dict.fromkeys(ids))
    return ServiceCall(
        domain=domain,
        service=service,
        entity_ids=tuple(dict.fromkeys(entity_ids)),
        data=data,
        target=targets,
    )


@dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    text: str  # for Claude's tool result and for Kiwi to say


class HomeAssistantActions:
    def __init__(self, homeassistant: HomeAssistantClient) -> None:
        self._homeassistant = homeassistant
        self._session: aiohttp.ClientSession | None = None

    @property
    def available(self) -> bool:
        return self._homeassistant.target() is not None

    async def call(self, call: ServiceCall) -> ActionOutcome:
        target = self._homeassistant.target()
        if target is None:
            return ActionOutcome(False, "Home Assistant is not configured.")
        requester = current_requester()
        if requester is not None:  # a voice's turn: HA runs it as the speaker's linked user
            outcome = await self._call_as(requester, call)
            if outcome is not None:
                return outcome
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body: dict[str, Any] = dict(call.data)
        if call.entity_ids:
            body["entity_id"] = list(call.entity_ids)
        for key, ids in call.target.items():
            body[key] = list(ids)
        url = f"{target.base_url}/api/services/{call.domain}/{call.service}"
        try:
            async with self._session.post(
                url,
                json=body,
                headers={"Authorization": f"Bearer {target.token}"},
                timeout=_TIMEOUT,
            ) as response:
                detail = (await response.text())[:300]
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as err:
            _LOGGER.warning("Home Assistant action %s failed: %s", call.name, err)
            return ActionOutcome(False, f"Could not reach Home Assistant: {err}.")
        if status == 200:
            _LOGGER.info("Home Assistant ran %s", call.describe())
            return ActionOutcome(True, f"Done: {call.describe()}.")
        if status in (401, 403):
            return ActionOutcome(False, "Home Assistant refused Kiwi's token.")
        _LOGGER.warning("Home Assistant refused %s: HTTP %s %s", call.name, status, detail)
        return ActionOutcome(False, f"Home Assistant refused {call.name} (HTTP {status}): {detail}")

    async def _call_as(self, requester: Requester, call: ServiceCall) -> ActionOutcome | None:
        message: dict[str, Any] = {
            "type": CALL_SERVICE_AS_COMMAND,
            "domain": call.domain,
            "service": call.service,
            "service_data": dict(call.data),
            "target": {key: list(ids) for key, ids in call.target.items()},
        }
        if call.entity_ids:
            message["target"]["entity_id"] = list(call.entity_ids)
        try:
            if await self._homeassistant.command_as(requester, message) is None:
                return None
        except ServiceError as err:
            _LOGGER.warning("Home Assistant refused %s: %s", call.name, err.message)
            return ActionOutcome(False, f"Home Assistant refused {call.name}: {err.message}")
        _LOGGER.info("Home Assistant ran %s for %s", call.describe(), requester.speaker_id)
        return ActionOutcome(True, f"Done: {call.describe()}.")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
