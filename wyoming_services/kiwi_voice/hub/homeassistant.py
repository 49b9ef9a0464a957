"""Home Assistant's REST API: is it reachable, and its conversation agent for home control; its
WebSocket API for what the REST API does not tell (registries, what a sentence would do).

Where HA is: the `homeassistant_url` setting with the `KIWI_HA_TOKEN` long-lived token, or, in
the add-on, the Supervisor's proxy `http://supervisor/core` (kiwi_voice.common.supervisor) with
`SUPERVISOR_TOKEN` (the launcher passes both as KIWI_HA_URL / KIWI_HA_TOKEN).

Every command Kiwi sends to HA's conversation agent passes its `CommandGuard` first (the owner's
approval of sensitive actions, hub/approvals/home_guard.py), whichever route it came by: a voice
turn, POST /api/conversation, POST /api/homeassistant/command, an approved guest's command.

Who asks (`acting_for`): a turn by a voice runs in Home Assistant as the HA user linked to that
speaker, a voice Kiwi cannot name as no user at all (a guest). HA's REST API can only run a
request as the token's user, so those requests go through the WebSocket commands Kiwi's
integration registers (`kiwi/conversation/process`, `kiwi/call_service`), which run them with the
linked user's `Context`. Without the integration they fall back to the REST API (the token's user)
and say so in the log.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import aiohttp

from kiwi_voice.common.supervisor import core_api_url

from .errors import ServiceError, ServiceProtocolError, ServiceUnavailable
from .protocol import HomeAssistantCommandResponse
from .settings import SettingsStore

_LOGGER = logging.getLogger(__name__)
SERVICE = "homeassistant"
_STATUS_CACHE_SECONDS = 5.0
_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
_STATUS_TIMEOUT = aiohttp.ClientTimeout(total=3, connect=2)
_WEBSOCKET_TIMEOUT_SECONDS = 10.0
# After HA said it has no `kiwi/*` command (the integration is not loaded), REST for a while.
_NO_INTEGRATION_RETRY_SECONDS = 60.0
PROCESS_AS_COMMAND = "kiwi/conversation/process"
CALL_SERVICE_AS_COMMAND = "kiwi/call_service"


@dataclass(frozen=True)
class Requester:
    """The voice behind a request to HA: an identified speaker, or None for a guest's voice."""

    speaker_id: str | None


_REQUESTER: ContextVar[Requester | None] = ContextVar("kiwi_ha_requester", default=None)


@contextmanager
def acting_for(requester: Requester | None) -> Iterator[None]:
    """Requests to HA made inside (and in tasks started inside) run for `requester`."""
    token = _REQUESTER.set(requester)
    try:
        yield
    finally:
        _REQUESTER.reset(token)


def current_requester() -> Requester | None:
    return _REQUESTER.get()


class HomeAssistantCommandError(ServiceError):
    """HA answered a WebSocket command with an error; `ha_code` is HA's code."""

    def __init__(self, message: str, ha_code: str | None) -> None:
        super().__init__(SERVICE, "homeassistant_error", message)
        self.ha_code = ha_code


class CommandRefused(ServiceError):
    """A command was not sent to Home Assistant: it needs the owner's approval and did not get
    it. `spoken` is what Kiwi says instead."""

    def __init__(self, code: str, message: str, spoken: str) -> None:
        super().__init__(SERVICE, code, message)
        self.spoken = spoken


class CommandGuard(Protocol):
    async def check_command(self, text: str, language: str) -> None:
        """Return when `text` may go to HA's conversation agent; raise CommandRefused if not."""


class HomeAssistantSocket:
    """One authenticated connection to HA's WebSocket API."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def command(self, message: dict[str, Any]) -> Any:
        """Send one command; its `result`, or ServiceError when HA answered an error."""
        command_id = next(self._ids)
        await self._socket.send_json({**message, "id": command_id})
        while True:
            answer = await self._socket.receive_json(timeout=_WEBSOCKET_TIMEOUT_SECONDS)
            if answer.get("id") != command_id or answer.get("type") != "result":
                continue
            if not answer.get("success"):
                failure = answer.get("error") or {}
                raise HomeAssistantCommandError(
                    f"Home Assistant refused {message.get('type')}: "
                    f"{failure.get('code')}: {failure.get('message')}",
                    failure.get("code"),
                )
            return answer.get("result")


class HomeAssistantNotConfigured(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            SERVICE,
            "homeassistant_not_configured",
            "Home Assistant is not configured: set homeassistant_url and the KIWI_HA_TOKEN token",
        )


@dataclass(frozen=True)
class Target:
    base_url: str
    token: str

    @property
    def mode(self) -> Literal["supervisor", "direct"]:
        """`supervisor`: the Supervisor's Core API proxy, whose WebSocket is `/core/websocket`."""
        through_proxy = self.base_url.rstrip("/") == core_api_url()
        if through_proxy or urlparse(self.base_url).hostname == "supervisor":
            return "supervisor"
        return "direct"


class HomeAssistantClient:
    def __init__(self, settings: SettingsStore, token: str | None, in_addon: bool) -> None:
        self._settings = settings
        self._token = token
        self._in_addon = in_addon
        self._session: aiohttp.ClientSession | None = None
        self._status: tuple[Target, float, bool] | None = None
        self._guard: CommandGuard | None = None
        self._no_integration_until = 0.0

    def set_guard(self, guard: CommandGuard) -> None:
        """Every command to the conversation agent passes `guard` first."""
        self._guard = guard

    def target(self) -> Target | None:
        url = str(self._settings.get("homeassistant_url")).rstrip("/")
        if not url and self._in_addon:
            url = core_api_url()
        if not url or not self._token:
            return None
        return Target(url, self._token)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _headers(self, target: Target) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.token}"}

    async def connected(self) -> bool:
        """Whether HA's API answers with our token (cached for a few seconds)."""
        target = self.target()
        if target is None:
            return False
        cached = self._status
        if cached and cached[0] == target and time.monotonic() - cached[1] < _STATUS_CACHE_SECONDS:
            return cached[2]
        try:
            async with self._http().get(
                f"{target.base_url}/api/", headers=self._headers(target), timeout=_STATUS_TIMEOUT
            ) as response:
                ok = response.status == 200
        except (TimeoutError, aiohttp.ClientError, ValueError):
            ok = False
        self._status = (target, time.monotonic(), ok)
        return ok

    def last_known_connected(self) -> bool:
        target = self.target()
        return bool(self._status and target and self._status[0] == target and self._status[2])

    @asynccontextmanager
    async def websocket(self) -> AsyncIterator[HomeAssistantSocket]:
        """An authenticated WebSocket to HA (`/api/websocket`; `/websocket` through the
        Supervisor's proxy). Raises ServiceError when HA cannot be reached or refuses."""
        target = self.target()
        if target is None:
            raise HomeAssistantNotConfigured()
        path = "/websocket" if target.mode == "supervisor" else "/api/websocket"
        url = target.base_url.replace("http", "ws", 1) + path
        try:
            async with asyncio.timeout(_WEBSOCKET_TIMEOUT_SECONDS):
                socket = await self._http().ws_connect(
                    url, timeout=aiohttp.ClientWSTimeout(ws_close=3)
                )
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            raise ServiceUnavailable(
                SERVICE, f"cannot reach Home Assistant's WebSocket: {err}"
            ) from err
        try:
            try:
                await socket.receive_json(timeout=_WEBSOCKET_TIMEOUT_SECONDS)  # auth_required
                await socket.send_json({"type": "auth", "access_token": target.token})
                answer = await socket.receive_json(timeout=_WEBSOCKET_TIMEOUT_SECONDS)
            except (TimeoutError, aiohttp.ClientError, TypeError, ValueError) as err:
                raise ServiceUnavailable(
                    SERVICE, f"Home Assistant's WebSocket failed: {err}"
                ) from err
            if answer.get("type") != "auth_ok":
                raise ServiceError(
                    SERVICE, "homeassistant_auth_failed", "Home Assistant refused the token"
                )
            yield HomeAssistantSocket(socket)
        except (TimeoutError, aiohttp.ClientError, TypeError, ValueError) as err:
            raise ServiceUnavailable(SERVICE, f"Home Assistant's WebSocket failed: {err}") from err
        finally:
            await socket.close()

    async def process(self, text: str, language: str) -> HomeAssistantCommandResponse:
        """Run `text` through HA's conversation agent; returns what it answered.

        Raises CommandRefused when the guard holds it back (nothing was sent to HA)."""
        target = self.target()
        if target is None:
            raise HomeAssistantNotConfigured()
        if self._guard is not None:
            await self._guard.check_command(text, language)
        requester = current_requester()
        if requester is not None:
            body = await self.command_as(
                requester, {"type": PROCESS_AS_COMMAND, "text": text, "language": language}
            )
            if body is not None:
                return _command_response(body, text)
        url = f"{target.base_url}/api/conversation/process"
        try:
            async with self._http().post(
                url,
                json={"text": text, "language": language},
                headers=self._headers(target),
                timeout=_TIMEOUT,
            ) as response:
                if response.status in (401, 403):
                    raise ServiceError(
                        SERVICE, "homeassistant_auth_failed", "Home Assistant refused the token"
                    )
                if response.status != 200:
                    raise ServiceError(
                        SERVICE,
                        "homeassistant_error",
                        f"Home Assistant answered HTTP {response.status}",
                    )
                body: Any = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            self._status = (target, time.monotonic(), False)
            raise ServiceUnavailable(SERVICE, f"cannot reach Home Assistant: {err}") from err
        self._status = (target, time.monotonic(), True)
        return _command_response(body, text)

    async def command_as(self, requester: Requester, message: dict[str, Any]) -> Any | None:
        """Run one of the integration's `kiwi/*` commands for `requester`: its result, or None
        when HA has no such command (the integration is not loaded: the caller uses REST)."""
        if time.monotonic() < self._no_integration_until:
            return None
        try:
            async with self.websocket() as socket:
                return await socket.command({**message, "speaker_id": requester.speaker_id})
        except HomeAssistantCommandError as err:
            if err.ha_code != "unknown_command":
                raise
        except ServiceUnavailable as err:
            # A Home Assistant that serves REST but no WebSocket (a proxy in front of it).
            _LOGGER.warning("Home Assistant's WebSocket failed (%s); using its REST API", err)
        self._no_integration_until = time.monotonic() + _NO_INTEGRATION_RETRY_SECONDS
        _LOGGER.warning(
            "Home Assistant has no %s (is Kiwi's integration set up?): the request runs as "
            "Kiwi's own Home Assistant user, not as the speaker's",
            message["type"],
        )
        return None


def _command_response(body: Any, text: str) -> HomeAssistantCommandResponse:
    return {
        "response": _speech(body),
        "command": text,
        "response_type": _get(body, "response", "response_type"),
        "conversation_id": _get(body, "conversation_id"),
    }


def _get(body: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body if isinstance(body, str) else None


def _speech(body: Any) -> str:
    speech = _get(body, "response", "speech", "plain", "speech")
    if speech is None:
        raise ServiceProtocolError(SERVICE, "Home Assistant's answer has no response.speech.plain")
    return speech
