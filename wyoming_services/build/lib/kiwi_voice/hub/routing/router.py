"""Where a request goes: Home Assistant's conversation agent first, then Claude.

1. Home Assistant (when configured and the speaker may control the home): when it handled the
   request (`response_type` action_done, or query_answer: it knew the answer from the home's
   state), its answer is the reply.
2. Otherwise Claude (when an API key is set) with the active soul's prompt and model, and
   the speaker's conversation so far. The reply streams.
3. Without Claude, Home Assistant's answer is the reply whatever it was ("Sorry, I couldn't
   understand that" included).

A Home Assistant failure is reported (ERROR, source homeassistant) and routing goes on; when
nothing can answer, `route` raises a `ServiceError` the caller turns into an apology.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.homeassistant import HomeAssistantClient
from kiwi_voice.hub.protocol import HomeAssistantCommandResponse
from kiwi_voice.hub.souls import ActiveSoul

from .claude import ChatMessage, ClaudeClient, ToolRunner
from .contexts import SpeakerContexts

_LOGGER = logging.getLogger(__name__)
HANDLED_BY_HOME_ASSISTANT = frozenset({"action_done", "query_answer"})


class Route(StrEnum):
    HOMEASSISTANT = "homeassistant"
    CLAUDE = "claude"


@dataclass
class Reply:
    """The answer to one request; `deltas` yields its text (one piece for Home Assistant)."""

    route: Route
    deltas: AsyncIterator[str]
    model: str | None = None
    response_type: str | None = None  # Home Assistant's, when it was asked
    text_parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    async def stream(self) -> AsyncIterator[str]:
        """The deltas, remembered in `text` as they pass."""
        async for delta in self.deltas:
            self.text_parts.append(delta)
            yield delta


async def _once(text: str) -> AsyncIterator[str]:
    yield text


class NoRouteError(ServiceError):
    def __init__(self, detail: str) -> None:
        super().__init__("hub", "no_route", detail)


class Router:
    def __init__(
        self,
        *,
        homeassistant: HomeAssistantClient,
        claude: ClaudeClient | None,
        souls: ActiveSoul,
        contexts: SpeakerContexts,
        tools: ToolRunner | None = None,
    ) -> None:
        self._homeassistant = homeassistant
        self._claude = claude
        self._souls = souls
        self._contexts = contexts
        self._tools = tools  # offered to Claude only when the speaker may control the home

    @property
    def claude_enabled(self) -> bool:
        return self._claude is not None

    async def route(
        self,
        text: str,
        language: str,
        context_key: str,
        *,
        allow_home_control: bool,
        report_error: Callable[[ServiceError], None],
    ) -> Reply:
        """Pick who answers; `report_error` hears of failures that routing works around."""
        home_answer: HomeAssistantCommandResponse | None = None
        if allow_home_control and self._homeassistant.target() is not None:
            try:
                home_answer = await self._homeassistant.process(text, language)
            except ServiceError as err:
                report_error(err)
            else:
                if home_answer["response_type"] in HANDLED_BY_HOME_ASSISTANT:
                    return self._home_reply(home_answer)
        if self._claude is not None:
            tools = self._tools if allow_home_control else None
            return self._claude_reply(self._claude, text, context_key, tools)
        if home_answer is not None:
            return self._home_reply(home_answer)
        if not allow_home_control:
            raise NoRouteError("only chat is allowed for this speaker and Claude is not configured")
        raise NoRouteError("neither Home Assistant nor Claude could answer")

    def _home_reply(self, answer: HomeAssistantCommandResponse) -> Reply:
        return Reply(
            route=Route.HOMEASSISTANT,
            deltas=_once(answer["response"]),
            response_type=answer["response_type"],
        )

    def _claude_reply(
        self, claude: ClaudeClient, text: str, context_key: str, tools: ToolRunner | None
    ) -> Reply:
        soul = self._souls.current()
        model = self._souls.model_of(soul)
        messages = [*self._contexts.history(context_key), ChatMessage("user", text)]
        deltas = claude.stream_reply(
            model=model,
            system=soul.system_prompt,
            messages=messages,
            tools=tools,
        )
        return Reply(route=Route.CLAUDE, deltas=deltas, model=model)

    def remember(self, context_key: str, user_text: str, reply: Reply) -> None:
        self._contexts.record(context_key, user_text, reply.text)
