"""Home Assistant actions (services) through HA's REST API, and which of them are sensitive.

`POST <ha>/api/services/<domain>/<service>` with `{"entity_id": [...], **data}` and the same
token as the conversation API (`HomeAssistantClient.target()`). Names are checked before they go
into a URL path. `is_sensitive` reads the `sensitive_actions` setting: comma-separated patterns
matched (shell wildcards allowed) against the domain, `domain.service` and each entity id.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import aiohttp

from kiwi_voice.hub.homeassistant import HomeAssistantClient

from .model import ServiceCall

_LOGGER = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9_]{1,64}$")
_ENTITY_ID = re.compile(r"^[a-z0-9_]{1,64}\.[a-z0-9_]{1,255}$")
_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=3)


class InvalidServiceCall(ValueError):
    pass


def service_call(domain: Any, service: Any, entity_id: Any = None, data: Any = None) -> ServiceCall:
    """A checked ServiceCall from a tool's arguments; raises InvalidServiceCall."""
    if not isinstance(domain, str) or not _NAME.match(domain):
        raise InvalidServiceCall(f"domain: {domain!r} is not a Home Assistant domain")
    if not isinstance(service, str) or not _NAME.match(service):
        raise InvalidServiceCall(f"service: {service!r} is not a service name")
    if entity_id is None:
        entity_ids: tuple[str, ...] = ()
    elif isinstance(entity_id, str):
        entity_ids = tuple(part.strip() for part in entity_id.split(",") if part.strip())
    elif isinstance(entity_id, list) and all(isinstance(e, str) for e in entity_id):
        entity_ids = tuple(entity_id)
    else:
        raise InvalidServiceCall("entity_id: expected an entity id or a list of them")
    for entity in entity_ids:
        if not _ENTITY_ID.match(entity):
            raise InvalidServiceCall(f"entity_id: {entity!r} is not an entity id")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InvalidServiceCall("data: expected an object")
    if "entity_id" in data:  # one place for the target, so the sensitivity check sees it
        raise InvalidServiceCall("data: put the entity in entity_id, not in data")
    return ServiceCall(domain=domain, service=service, entity_ids=entity_ids, data=dict(data))


def is_sensitive(call: ServiceCall, patterns: str) -> bool:
    entries = [entry.strip().lower() for entry in patterns.split(",") if entry.strip()]
    names = (call.domain, call.name, *call.entity_ids)
    return any(fnmatchcase(name, entry) for entry in entries for name in names)


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
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body: dict[str, Any] = dict(call.data)
        if call.entity_ids:
            body["entity_id"] = list(call.entity_ids)
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

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
