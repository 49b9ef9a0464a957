"""What the REST controls do: speak a test phrase, stop speaking, forget the conversation.

The endpoints depend only on the `Controls` protocol. `BasicControls` is the hub's own working
implementation; the voice pipeline provides its own (sharing its turn state and barge-in) and the
app context simply holds that one instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from .conversation import ConversationMemory
from .event_payloads import EventType, context_reset, error, tts_finished, tts_started
from .events import EventBus
from .playback import PlaybackOutputs
from .settings import SettingsStore
from .souls import ActiveSoul
from .state import AssistantState, StateMachine
from .tts import TtsClient
from .wyoming_client import ServiceError

_LOGGER = logging.getLogger(__name__)
SOURCE = "tts"


class Controls(Protocol):
    async def speak(self, text: str) -> None:
        """Start speaking `text`; return once audio started. Raises ServiceError if it cannot."""

    async def stop(self) -> bool:
        """Stop speaking now; True if something was interrupted."""

    async def reset_context(self) -> None:
        """Forget the conversation so far."""

    async def close(self) -> None:
        """Stop everything before the hub exits."""


class BasicControls:
    def __init__(
        self,
        *,
        bus: EventBus,
        state: StateMachine,
        settings: SettingsStore,
        souls: ActiveSoul,
        tts: TtsClient,
        outputs: PlaybackOutputs,
        conversation: ConversationMemory,
    ) -> None:
        self._bus = bus
        self._state = state
        self._settings = settings
        self._souls = souls
        self._tts = tts
        self._outputs = outputs
        self._conversation = conversation
        self._speaking: asyncio.Task[None] | None = None

    def _voice(self) -> str | None:
        return self._souls.current().voice or self._settings.get("tts_voice") or None

    async def speak(self, text: str) -> None:
        await self.stop()
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._speaking = asyncio.create_task(self._speak(text, self._voice(), started))
        await started

    async def _speak(self, text: str, voice: str | None, started: asyncio.Future[None]) -> None:
        audio_seconds = 0.0
        began = False
        try:
            async with contextlib.aclosing(self._tts.synthesize(text, voice)) as chunks:
                async for chunk in chunks:
                    if not began:
                        began = True
                        self._begin(text, voice)
                        started.set_result(None)
                    await self._outputs.play(chunk)
                    audio_seconds += chunk.seconds
            if not began:  # the service sent no audio at all: still a start and an end
                self._begin(text, voice)
                started.set_result(None)
                began = True
            self._bus.publish(EventType.TTS_FINISHED, tts_finished(False, audio_seconds), SOURCE)
        except asyncio.CancelledError:
            if began:
                self._bus.publish(EventType.TTS_FINISHED, tts_finished(True, audio_seconds), SOURCE)
            raise
        except ServiceError as err:
            _LOGGER.warning("Speaking failed: %s", err.message)
            self._bus.publish(EventType.ERROR, error(err.message, SOURCE, err.code), SOURCE)
            if began:
                self._bus.publish(EventType.TTS_FINISHED, tts_finished(True, audio_seconds), SOURCE)
            elif not started.done():
                started.set_exception(err)
        except Exception as err:
            _LOGGER.exception("Speaking failed")
            self._bus.publish(EventType.ERROR, error(str(err), SOURCE, "internal_error"), SOURCE)
            if not started.done():
                started.set_exception(err)
        finally:
            if not started.done():  # stopped before the first audio: nothing to wait for
                started.set_result(None)
            if began:
                self._state.reset(SOURCE)

    def _begin(self, text: str, voice: str | None) -> None:
        self._state.transition(AssistantState.SPEAKING, SOURCE)
        provider = str(self._settings.get("tts_provider"))
        self._bus.publish(EventType.TTS_STARTED, tts_started(text, provider, voice), SOURCE)

    async def stop(self) -> bool:
        task, self._speaking = self._speaking, None
        if task is None or task.done():
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._outputs.flush()
        return True

    async def reset_context(self) -> None:
        self._conversation.clear()
        self._bus.publish(EventType.CONTEXT_RESET, context_reset(), "conversation")

    async def close(self) -> None:
        await self.stop()
