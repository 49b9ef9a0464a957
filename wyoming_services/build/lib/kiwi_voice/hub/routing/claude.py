"""Claude through the `anthropic` client, streaming: the reply arrives as text deltas.

The base URL is the SDK's (`https://api.anthropic.com`) unless `ANTHROPIC_BASE_URL` names
another; tests point it at a local server that speaks the same Messages streaming protocol.
Failures become `ServiceError`s of the service "llm" with a code a client can act on.

Tools (optional): with a `ToolRunner`, Claude may answer with `tool_use` blocks; each is run,
its result goes back as a `tool_result`, and the reply streams on (a few rounds at most).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from kiwi_voice.hub.errors import ServiceError, ServiceUnavailable

if TYPE_CHECKING:
    import anthropic

_LOGGER = logging.getLogger(__name__)
SERVICE = "llm"
DEFAULT_MAX_TOKENS = 1024
MAX_TOOL_ROUNDS = 4  # tool calls answered before Claude must reply in words


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class ToolOutcome:
    text: str  # the tool_result content Claude reads
    is_error: bool = False


class ToolRunner(Protocol):
    def definitions(self) -> list[dict[str, Any]]:
        """The tool definitions to offer (empty: offer none)."""

    async def run(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run one tool call; may wait (e.g. for the owner's approval)."""


class ClaudeClient:
    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        max_retries: int = 1,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        # Imported here: the SDK takes seconds to import, and a hub without a key never needs it.
        import anthropic

        self._sdk = anthropic
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url or None,
            timeout=timeout_seconds,
            max_retries=max_retries,
        )
        self._max_tokens = max_tokens

    async def stream_reply(
        self,
        *,
        model: str,
        system: str,
        messages: Sequence[ChatMessage],
        tools: ToolRunner | None = None,
    ) -> AsyncIterator[str]:
        """Yield the reply's text deltas as Claude produces them.

        A soul's `temperature` is not sent: the Messages API of this `anthropic` release has
        no sampling parameters any more.
        """
        conversation: list[dict[str, Any]] = [{"role": m.role, "content": m.text} for m in messages]
        definitions = tools.definitions() if tools is not None else []
        ended_with_space = True
        for _round in range(MAX_TOOL_ROUNDS + 1):
            request: dict[str, Any] = {
                "model": model,
                "max_tokens": self._max_tokens,
                "system": system,
                "messages": conversation,
            }
            if definitions:
                request["tools"] = definitions
            final: list[Any] = []
            first = True
            async for text in self._stream(request, final):
                if first and not ended_with_space and not text[:1].isspace():
                    yield " "  # the words before a tool call and after it are one reply
                first = False
                ended_with_space = text[-1:].isspace()
                yield text
            tool_uses = [block for block in final[0].content if block.type == "tool_use"]
            if tools is None or not tool_uses:
                return
            kept = [b for b in final[0].content if b.type != "text" or b.text]  # no empty text
            conversation.append({"role": "assistant", "content": [_block(b) for b in kept]})
            results = []
            for use in tool_uses:
                arguments = dict(use.input) if isinstance(use.input, dict) else {}
                outcome = await tools.run(use.name, arguments)
                _LOGGER.info("Tool %s: %s", use.name, outcome.text)
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": use.id,
                        "content": outcome.text,
                        "is_error": outcome.is_error,
                    }
                )
            conversation.append({"role": "user", "content": results})

    async def _stream(self, request: dict[str, Any], final: list[Any]) -> AsyncIterator[str]:
        """One Messages stream: its text deltas; the complete message is appended to `final`."""
        anthropic = self._sdk
        try:
            async with self._client.messages.stream(**request) as stream:
                async for text in stream.text_stream:
                    if text:
                        yield text
                final.append(await stream.get_final_message())
        except anthropic.APIStatusError as err:
            raise ServiceError(
                SERVICE,
                _status_code(err),
                f"Claude answered HTTP {err.status_code}: {_reason(err)}",
            ) from err
        except anthropic.APITimeoutError as err:
            raise ServiceUnavailable(SERVICE, "Claude did not answer in time") from err
        except anthropic.APIConnectionError as err:
            raise ServiceUnavailable(SERVICE, f"cannot reach Claude: {err}") from err
        except anthropic.APIError as err:  # e.g. an `error` event in the middle of the stream
            raise ServiceError(SERVICE, "llm_error", f"Claude failed: {err}") from err

    async def close(self) -> None:
        await self._client.close()


def _block(block: Any) -> dict[str, Any]:
    """A content block of Claude's message, as it goes back in the conversation."""
    if block.type == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    if block.type == "text":
        return {"type": "text", "text": block.text}
    return dict(block.model_dump(exclude_none=True))


def _status_code(err: anthropic.APIStatusError) -> str:
    if err.status_code in (401, 403):
        return "llm_auth_failed"
    if err.status_code == 429:
        return "llm_rate_limited"
    if err.status_code in (500, 502, 503, 529):
        return "llm_overloaded"
    return "llm_error"


def _reason(err: anthropic.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        detail = body.get("error")
        if isinstance(detail, dict) and isinstance(detail.get("message"), str):
            return str(detail["message"])
    return err.message
