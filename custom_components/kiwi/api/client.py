"""REST client of the Kiwi hub (contract: the hub's /api/* endpoints)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from .errors import (
    KiwiAuthenticationError,
    KiwiConnectionError,
    KiwiError,
    KiwiNotFoundError,
    KiwiResponseError,
)
from .models import (
    ConversationReply,
    HubConfig,
    HubInfo,
    HubStatus,
    JsonObject,
    Languages,
    ListenResult,
    SatelliteInfo,
    Soul,
    SpeakerProfile,
)

DEFAULT_REQUEST_TIMEOUT = 10.0
# A conversation turn may wait on a language model; give it more time than a status read.
CONVERSATION_TIMEOUT = aiohttp.ClientTimeout(total=120.0, sock_read=60.0)
# Saying an announcement to its end, and a satellite listening for an answer (its listen timeout,
# the utterance, the transcription), take longer than a status read.
SPEAKING_LIMIT = 120.0
LISTEN_LIMIT = 120.0
# A speaker's Assist turn may also wait for the owner's approval (approval_timeout_seconds,
# 120 s by default) before anything streams.
SPOKEN_CONVERSATION_TIMEOUT = aiohttp.ClientTimeout(total=300.0, sock_read=240.0)
NDJSON = "application/x-ndjson"
# Enrolling downloads and embeds a recording.
ENROLL_TIMEOUT = 60.0


def _error_details(body: Any) -> tuple[str | None, str | None]:
    """Pull (code, message) out of an error body, whichever shape the hub used."""
    if not isinstance(body, Mapping):
        return None, None
    error = body.get("error")
    if isinstance(error, Mapping):
        return _as_text(error.get("code")), _as_text(error.get("message"))
    return _as_text(body.get("code")), _as_text(error) or _as_text(body.get("message"))


def connection_reason(err: BaseException) -> str:
    """Why the hub could not be reached, in a few words (the URL is said elsewhere)."""
    if isinstance(err, TimeoutError):
        return "no answer in time"
    if isinstance(err, aiohttp.ClientConnectorError):
        if isinstance(err.os_error, ConnectionRefusedError):
            return "connection refused (is Kiwi running on that port?)"
        if isinstance(err.os_error, socket.gaierror):
            return "the host name is unknown"
        return (err.os_error.strerror or type(err.os_error).__name__).lower()
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "the hub closed the connection"
    return str(err) or type(err).__name__


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class KiwiClient:
    """Talks to one hub over HTTP with a Bearer token.

    The aiohttp session is borrowed (Home Assistant shares one); the client never closes it.
    """

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        session: aiohttp.ClientSession,
        *,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    ) -> None:
        """Point the client at ``http://host:port``."""
        self.host = host
        self.port = port
        self._token = token
        self.session = session
        self._request_timeout = request_timeout

    @property
    def base_url(self) -> str:
        """The hub's root URL (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request; kept out of URLs so logs never see the token."""
        return {"Authorization": f"Bearer {self._token}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: JsonObject | None = None,
        params: Mapping[str, str] | None = None,
        wav: bytes | None = None,
        time_limit: float | None = None,
    ) -> JsonObject:
        """Send one request (a JSON or a WAV body) and return the JSON object answered."""
        url = f"{self.base_url}{path}"
        headers = self.auth_headers
        if wav is not None:
            headers["Content-Type"] = "audio/wav"
        try:
            async with asyncio.timeout(time_limit or self._request_timeout):
                async with self.session.request(
                    method, url, json=json, data=wav, params=params, headers=headers
                ) as response:
                    body = await self._read_body(response)
                    status = response.status
        except (TimeoutError, aiohttp.ClientError) as err:
            raise KiwiConnectionError(connection_reason(err)) from err
        if status >= 400:
            raise self._status_error(status, path, body)
        if not isinstance(body, dict):
            raise KiwiResponseError(f"{path} answered without a JSON object", status=status)
        return body

    @staticmethod
    async def _read_body(response: aiohttp.ClientResponse) -> Any:
        try:
            return await response.json(content_type=None)
        except ValueError:
            return None

    @staticmethod
    def _status_error(status: int, path: str, body: Any) -> KiwiError:
        code, message = _error_details(body)
        text = message or f"{path} answered HTTP {status}"
        if status == 401:
            return KiwiAuthenticationError(text, code=code)
        if status == 404:
            return KiwiNotFoundError(text, status=status, code=code)
        return KiwiResponseError(text, status=status, code=code)

    # Status and configuration

    async def health(self) -> HubInfo:
        """GET /api/health: the hub's identity and version."""
        return HubInfo.from_dict(await self.request("GET", "/api/health"))

    async def status(self) -> HubStatus:
        """GET /api/status."""
        return HubStatus.from_dict(await self.request("GET", "/api/status"))

    async def config(self) -> HubConfig:
        """GET /api/config."""
        return HubConfig.from_dict(await self.request("GET", "/api/config"))

    async def update_config(self, changes: JsonObject) -> JsonObject:
        """PATCH /api/config; returns ``{"updated": {...}}``."""
        return await self.request("PATCH", "/api/config", json=changes)

    async def languages(self) -> Languages:
        """GET /api/languages."""
        return Languages.from_dict(await self.request("GET", "/api/languages"))

    async def set_language(self, language: str) -> None:
        """POST /api/language."""
        await self.request("POST", "/api/language", json={"language": language})

    # Souls

    async def souls(self) -> list[Soul]:
        """GET /api/souls."""
        body = await self.request("GET", "/api/souls")
        return [Soul.from_dict(soul) for soul in body.get("souls") or ()]

    async def set_soul(self, soul_id: str) -> None:
        """POST /api/soul."""
        await self.request("POST", "/api/soul", json={"soul": soul_id})

    # Speakers

    async def speakers(self) -> list[SpeakerProfile]:
        """GET /api/speakers."""
        body = await self.request("GET", "/api/speakers")
        return [SpeakerProfile.from_dict(speaker) for speaker in body.get("speakers") or ()]

    async def update_speaker(self, speaker_id: str, changes: JsonObject) -> None:
        """PATCH /api/speakers/{id}: name, priority, person link or soul."""
        await self.request("PATCH", f"/api/speakers/{quote(speaker_id, safe='')}", json=changes)

    async def block_speaker(self, speaker_id: str) -> None:
        """POST /api/speakers/{id}/block."""
        await self.request("POST", f"/api/speakers/{quote(speaker_id, safe='')}/block")

    async def unblock_speaker(self, speaker_id: str) -> None:
        """POST /api/speakers/{id}/unblock."""
        await self.request("POST", f"/api/speakers/{quote(speaker_id, safe='')}/unblock")

    async def delete_speaker(self, speaker_id: str) -> None:
        """DELETE /api/speakers/{id}."""
        await self.request("DELETE", f"/api/speakers/{quote(speaker_id, safe='')}")

    async def enroll_speaker(
        self,
        wav: bytes,
        *,
        name: str | None = None,
        priority: int | None = None,
        speaker_id: str | None = None,
    ) -> SpeakerProfile:
        """POST /api/speakers/enroll: a new profile from a WAV recording.

        With ``speaker_id`` the recording adds samples to that profile instead.
        """
        params = {"name": name, "priority": priority, "id": speaker_id}
        body = await self.request(
            "POST",
            "/api/speakers/enroll",
            params={key: str(value) for key, value in params.items() if value is not None},
            wav=wav,
            time_limit=ENROLL_TIMEOUT,
        )
        return SpeakerProfile.from_dict(body)

    # Voice and controls

    async def tts_test(
        self, text: str | None = None, target: str | None = None, *, wait: bool = False
    ) -> list[str]:
        """POST /api/tts/test: speak ``text`` (the hub's default phrase when None), on the
        output labelled ``target`` only when given; returns where it plays (``wait``: once it
        was said, not once it started).

        The hub refuses (503 ``no_audio_output``) when nothing can play the audio."""
        body: JsonObject = {}
        if text:
            body["text"] = text
        if target:
            body["target"] = target
        if wait:
            body["wait"] = True
        answer = await self.request(
            "POST", "/api/tts/test", json=body, time_limit=SPEAKING_LIMIT if wait else None
        )
        played_on = answer.get("played_on")
        return [str(label) for label in played_on] if isinstance(played_on, list) else []

    # Kiwi's own microphones (assist satellites)

    async def satellites(self) -> list[SatelliteInfo]:
        """GET /api/satellites: the host microphone and the named browser microphones."""
        body = await self.request("GET", "/api/satellites")
        items = body.get("satellites")
        return (
            [SatelliteInfo.from_dict(item) for item in items if isinstance(item, dict)]
            if (isinstance(items, list))
            else []
        )

    async def set_satellite_replies(self, satellite_id: str, *, here: bool) -> None:
        """PATCH /api/satellites/{id}: its replies play on it (``here``) or elsewhere (Home
        Assistant plays them on a media player)."""
        await self.request(
            "PATCH",
            f"/api/satellites/{quote(satellite_id, safe='')}",
            json={"replies": "here" if here else "elsewhere"},
        )

    async def satellite_listen(self, satellite_id: str, *, answer_only: bool) -> ListenResult:
        """POST /api/satellites/{id}/listen: listen there now, no wake word; answers once the
        user stopped talking (``answer_only``: with the transcript, and no turn runs)."""
        body = await self.request(
            "POST",
            f"/api/satellites/{quote(satellite_id, safe='')}/listen",
            json={"answer_only": answer_only},
            time_limit=LISTEN_LIMIT,
        )
        return ListenResult.from_dict(body)

    async def stop(self) -> None:
        """POST /api/stop: interrupt playback."""
        await self.request("POST", "/api/stop")

    async def reset_context(self) -> None:
        """POST /api/reset-context: forget the conversation history."""
        await self.request("POST", "/api/reset-context")

    async def restart(self) -> None:
        """POST /api/restart."""
        await self.request("POST", "/api/restart")

    async def resolve_approval(self, request_id: str, *, approved: bool) -> JsonObject:
        """POST /api/approvals/{request_id}: answer a pending approval."""
        return await self.request(
            "POST",
            f"/api/approvals/{quote(request_id, safe='')}",
            json={"approved": approved},
        )

    async def converse(
        self,
        text: str,
        language: str,
        conversation_id: str | None = None,
        *,
        utterance_id: str | None = None,
    ) -> AsyncIterator[str | ConversationReply]:
        """POST /api/conversation, streamed: the answer's text pieces, then the whole reply.

        The hub routes the text like a voice turn (Home Assistant, then Claude) and streams
        newline-delimited JSON: ``delta`` frames, then ``done`` (or ``error``).
        """
        request: JsonObject = {"text": text, "language": language}
        if conversation_id:
            request["conversation_id"] = conversation_id
        if utterance_id:  # an Assist utterance (POST /api/assist/stt): its speaker's turn
            request["utterance_id"] = utterance_id
        headers = {**self.auth_headers, "Accept": NDJSON}
        url = f"{self.base_url}/api/conversation"
        try:
            async with self.session.post(
                url,
                json=request,
                headers=headers,
                timeout=SPOKEN_CONVERSATION_TIMEOUT if utterance_id else CONVERSATION_TIMEOUT,
            ) as response:
                if response.status >= 400:
                    body = await self._read_body(response)
                    raise self._status_error(response.status, "/api/conversation", body)
                async for line in response.content:
                    if not line.strip():
                        continue
                    frame = json.loads(line)
                    if frame.get("type") == "delta":
                        yield str(frame.get("text") or "")
                    elif frame.get("type") == "done":
                        yield ConversationReply.from_dict(frame)
                        return
                    elif frame.get("type") == "error":
                        raise KiwiResponseError(
                            str(frame.get("message") or "the hub could not answer"),
                            status=response.status,
                            code=_as_text(frame.get("code")),
                        )
        except (TimeoutError, aiohttp.ClientError) as err:
            raise KiwiConnectionError(connection_reason(err)) from err
        except ValueError as err:
            raise KiwiResponseError(
                f"/api/conversation streamed a frame that is not JSON: {err}", status=200
            ) from err
        raise KiwiResponseError("/api/conversation ended without an answer", status=200)
