"""The hub's REST controls (/api/tts/test, /api/stop, /api/reset-context) on top of the
pipeline: stopping stops turns (LLM, TTS and audio alike) and forgetting forgets every
speaker's conversation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from kiwi_voice.hub.event_payloads import EventType, context_reset
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.routing.contexts import SpeakerContexts

from .engine import Pipeline

_LOGGER = logging.getLogger(__name__)


class PipelineControls:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        contexts: SpeakerContexts,
        bus: EventBus,
        on_close: list[Callable[[], Awaitable[None]]],
    ) -> None:
        self._pipeline = pipeline
        self._contexts = contexts
        self._bus = bus
        self._on_close = on_close

    async def speak(self, text: str, target: str | None = None, *, wait: bool = False) -> list[str]:
        return await self._pipeline.announce(text, target, wait=wait)

    async def stop(self) -> bool:
        return await self._pipeline.interrupt()

    async def reset_context(self) -> None:
        self._contexts.clear()
        self._bus.publish(EventType.CONTEXT_RESET, context_reset(), "conversation")

    async def close(self) -> None:
        await self._pipeline.close()
        for close in self._on_close:
            try:
                await close()
            except Exception:  # one part failing to close must not keep the others open
                _LOGGER.exception("Closing a pipeline part failed")
