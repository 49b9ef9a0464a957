"""Claude through the `anthropic` client, streaming: the reply arrives as text deltas.

The base URL is the SDK's (`https://api.anthropic.com`) unless `ANTHROPIC_BASE_URL` names
another; tests point it at a local server that speaks the same Messages streaming protocol.
Failures become `ServiceError`s of the service "llm" with a code a client can act on.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anthropic

from kiwi_voice.hub.errors import ServiceError, ServiceUnavailable

_LOGGER = logging.getLogger(__name__)
SERVICE = "llm"
DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    text: str


class ClaudeClient:
    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_seconds: float = 60.0,
        max_retries: int = 1,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
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
        temperature: float | None = None,
    ) -> AsyncIterator[str]:
        """Yield the reply's text deltas as Claude produces them."""
        request: dict[str, Any] = {
            "model": model,
            "max_tokens": self._max_tokens,
            "system": system,
            "messages": [{"role": m.role, "content": m.text} for m in messages],
        }
        if temperature is not None:
            request["temperature"] = temperature
        try:
            async with self._client.messages.stream(**request) as stream:
                async for text in stream.text_stream:
                    if text:
                        yield text
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
