"""Where a request goes: Home Assistant's conversation agent first, then Claude.

1. Home Assistant (when configured and the speaker may control the home): when it handled the
   request (`response_type` action_done, or query_answer: it knew the answer from the home's
   state), its answer is the reply.
2. Otherwise Claude (when an API key is set) with the active soul's prompt and model, and
   the speaker's conversation so far. The reply streams.
3. Without Claude, Home Assistant's answer is the reply whatever it was, and when HA could not
   handle it (an open question), the reply adds that open questions need an Anthropic API key
   (an ERROR `llm_not_configured` with `setting: anthropic_api_key` says so too).

A Home Assistant failure is reported (ERROR, source homeassistant) and routing goes on; when
nothing can answer, `route` raises a `ServiceError` the caller turns into an apology.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.homeassistant import CommandRefused, HomeAssistantClient
from kiwi_voice.hub.protocol import LANGUAGE_NAMES, HomeAssistantCommandResponse
from kiwi_voice.hub.souls import ActiveSoul

from .claude import ChatMessage, ClaudeClient, ToolRunner
from .contexts import SpeakerContexts

_LOGGER = logging.getLogger(__name__)
HANDLED_BY_HOME_ASSISTANT = frozenset({"action_done", "query_answer"})


class Route(StrEnum):
    HOMEASSISTANT = "homeassistant"
    CLAUDE = "claude"
    REFUSAL = "refusal"  # Kiwi itself: the command needs the owner's approval and has none


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


async def once(text: str) -> AsyncIterator[str]:
    """A reply of one piece."""
    yield text


HOW_TO_CONNECT_HOME_ASSISTANT = (
    "connect Home Assistant (the homeassistant_url setting or KIWI_HA_URL, with a long-lived "
    "access token in KIWI_HA_TOKEN; the add-on does this by itself)"
)
HOW_TO_ADD_CLAUDE = (
    "give Claude an API key (ANTHROPIC_API_KEY, or the add-on option anthropic_api_key)"
)


NEEDS_CLAUDE = (
    "I can only control your home: open questions need an Anthropic API key, which the owner "
    "can add (the anthropic_api_key option)."
)


class NoRouteError(ServiceError):
    """Nothing may or can answer this request; `spoken` is what Kiwi says instead."""

    def __init__(self, detail: str, spoken: str, setting: str) -> None:
        super().__init__("hub", "no_route", detail, setting)
        self.spoken = spoken


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
        soul: str | None = None,
    ) -> Reply:
        """Pick who answers; `report_error` hears of failures that routing works around.
        `soul`: the speaker's own soul for Claude (None or unavailable: the active soul)."""
        home_answer: HomeAssistantCommandResponse | None = None
        if allow_home_control and self._homeassistant.target() is not None:
            try:
                home_answer = await self._homeassistant.process(text, language)
            except CommandRefused as refused:  # held back for the owner: nobody else may do it
                return Reply(route=Route.REFUSAL, deltas=once(refused.spoken))
            except ServiceError as err:
                report_error(err)
            else:
                if home_answer["response_type"] in HANDLED_BY_HOME_ASSISTANT:
                    return self._home_reply(home_answer)
        if self._claude is not None:
            tools = self._tools if allow_home_control else None
            return self._claude_reply(self._claude, text, language, context_key, tools, soul=soul)
        if home_answer is not None:
            report_error(
                ServiceError(
                    "llm",
                    "llm_not_configured",
                    f"Home Assistant could not handle {text!r} and Claude is not configured: "
                    f"{HOW_TO_ADD_CLAUDE} for open questions",
                    "anthropic_api_key",
                )
            )
            return self._home_reply(home_answer, hint=NEEDS_CLAUDE)
        raise self._no_route(allow_home_control)

    def _no_route(self, allow_home_control: bool) -> NoRouteError:
        """Why nothing answered, and what to set up so that something will."""
        if not allow_home_control:
            return NoRouteError(
                f"only chat is allowed for this speaker and Claude is not configured: "
                f"{HOW_TO_ADD_CLAUDE}",
                "Sorry, I may only chat with you, and I have no language model to chat with "
                "yet. The owner can give me an Anthropic API key for Claude.",
                "anthropic_api_key",
            )
        if self._homeassistant.target() is None:
            return NoRouteError(
                f"nothing is set up to answer: {HOW_TO_CONNECT_HOME_ASSISTANT}, "
                f"or {HOW_TO_ADD_CLAUDE}",
                "I heard you, but nothing is set up to answer yet. Connect me to Home "
                "Assistant, or give me an Anthropic API key for Claude.",
                "homeassistant_token",
            )
        return NoRouteError(
            f"Home Assistant did not answer and Claude is not configured: {HOW_TO_ADD_CLAUDE} "
            "for an answer when Home Assistant cannot give one",
            "Sorry, Home Assistant did not answer.",
            "anthropic_api_key",
        )

    def _home_reply(self, answer: HomeAssistantCommandResponse, hint: str = "") -> Reply:
        text = answer["response"]
        if hint:
            text = f"{text.rstrip(' .!')}. {hint}" if text.strip() else hint
        return Reply(
            route=Route.HOMEASSISTANT, deltas=once(text), response_type=answer["response_type"]
        )

    def _claude_reply(
        self,
        claude: ClaudeClient,
        text: str,
        language: str,
        context_key: str,
        tools: ToolRunner | None,
        *,
        soul: str | None = None,
    ) -> Reply:
        chosen = self._souls.for_speaker(soul)
        model = self._souls.model_of(chosen)
        messages = [*self._contexts.history(context_key), ChatMessage("user", text)]
        deltas = claude.stream_reply(
            model=model,
            system=f"{chosen.system_prompt}\n\n{language_instruction(language)}",
            messages=messages,
            tools=tools,
        )
        return Reply(route=Route.CLAUDE, deltas=deltas, model=model)

    def remember(self, context_key: str, user_text: str, reply: Reply) -> None:
        self._contexts.record(context_key, user_text, reply.text)


def language_instruction(language: str) -> str:
    """What tells Claude the language to answer in (Kiwi speaks its answer with a voice of it)."""
    code = language.replace("-", "_").split("_")[0].lower()
    name = LANGUAGE_NAMES.get(code, code)
    return (
        f"Kiwi's language is {name} ({code}): answer in {name}, whatever language the request "
        "is in, unless the user asks for another language."
    )
