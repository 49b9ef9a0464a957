"""Keeps the wake word engine choice current: asks kiwi-wake what it has at start (retrying
while it boots) and again whenever `wake_word` or `wake_word_engine` change.

The choice is logged, shown in GET /api/config (`wake_word_engine_active`) and read by every
listener when it (re)opens its wake word stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from kiwi_voice.hub.errors import ServiceError
from kiwi_voice.hub.protocol import WakeEngineInfo
from kiwi_voice.hub.settings import SettingsStore

from .status import PipelineStatus
from .wake import EngineChoice, InstalledWakeWord, choose_engine, installed_wake_words

_LOGGER = logging.getLogger(__name__)
_RETRY_SECONDS = 2.0
_RETRIES = 15  # kiwi-wake may still be loading when the hub starts


class WakeEngineSelector:
    def __init__(self, settings: SettingsStore, wake_uri: str, status: PipelineStatus) -> None:
        self._settings = settings
        self._wake_uri = wake_uri
        self._status = status
        self._installed: list[InstalledWakeWord] | None = None
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[EngineChoice], None]] = []
        self.current = self._choose()
        settings.on_change(self._on_settings_changed)

    def on_change(self, listener: Callable[[EngineChoice], None]) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def start(self) -> None:
        """Ask kiwi-wake in the background (retrying while it starts)."""
        self._task = asyncio.create_task(self._discover(_RETRIES), name="wake-engine-discovery")

    async def refresh(self) -> EngineChoice:
        """Ask kiwi-wake once now (e.g. after a custom model was added)."""
        await self._discover(1)
        return self.current

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _discover(self, attempts: int) -> None:
        for attempt in range(attempts):
            try:
                self._installed = await installed_wake_words(self._wake_uri)
                break
            except ServiceError as err:
                if attempt == attempts - 1:
                    _LOGGER.warning("Cannot ask kiwi-wake for its wake words: %s", err.message)
                else:
                    await asyncio.sleep(_RETRY_SECONDS)
        self._update()

    def _choose(self) -> EngineChoice:
        return choose_engine(
            str(self._settings.get("wake_word_engine")),
            str(self._settings.get("wake_word")),
            self._installed,
        )

    def _update(self) -> None:
        choice = self._choose()
        changed = choice != self.current or self._status.wake_engine is None
        self.current = choice
        info: WakeEngineInfo = {
            "engine": choice.engine,
            "wake_word": choice.wake_word,
            "model": choice.model,
            "reason": choice.reason,
        }
        self._status.wake_engine = info
        if changed:
            _LOGGER.info(
                "Wake word %r: engine %s (%s)", choice.wake_word, choice.engine, choice.reason
            )
            for listener in list(self._listeners):
                listener(choice)

    def _on_settings_changed(self, changed: dict[str, object]) -> None:
        if "wake_word" in changed or "wake_word_engine" in changed:
            self._update()
