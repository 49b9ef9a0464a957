"""The Whisper model kiwi-stt runs, and switching it while the service runs (Kiwi's addition
to the Wyoming `asr` protocol; the hub's `stt_model` and `stt_device` settings use it).

    -> kiwi-stt-load      {"model": "small", "device": "cpu"}
    <- kiwi-stt-progress  {"model", "device", "stage": "downloading" | "loading"}   (0 or more)
    <- kiwi-stt-loaded    {"model", "device", "seconds"}
       or an `error` event (model_missing, engine_failed): the old model keeps running.

The new model is loaded beside the old one and takes over only once it works; transcriptions
already under way finish on the model they started with. Only clients on this machine may switch
(`--model-switching`): anyone who can reach the port may transcribe, not make the service load or
download a model.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from kiwi_voice.common.errors import ErrorCode, ServiceError

from .engine import WhisperEngine

_LOGGER = logging.getLogger(__name__)

LOAD_EVENT = "kiwi-stt-load"
PROGRESS_EVENT = "kiwi-stt-progress"
LOADED_EVENT = "kiwi-stt-loaded"
DEVICES = ("cpu", "cuda", "auto")
Stage = Literal["downloading", "loading"]
ProgressReport = Callable[[Stage], Awaitable[None]]
SwitchingPolicy = Literal["local", "any", "off"]


@dataclass(frozen=True)
class LoadRequest:
    model: str
    device: str

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> LoadRequest:
        data = data or {}
        model, device = data.get("model"), data.get("device", "cpu")
        if not isinstance(model, str) or not 1 <= len(model.strip()) <= 128:
            raise ServiceError(ErrorCode.BAD_REQUEST, f"{LOAD_EVENT}: model must be a name")
        if device not in DEVICES:
            raise ServiceError(
                ErrorCode.BAD_REQUEST, f"{LOAD_EVENT}: device must be one of {', '.join(DEVICES)}"
            )
        return cls(model.strip(), device)


def may_switch(policy: SwitchingPolicy, peer: str) -> bool:
    """Whether a client at `peer` (its IP address, or "local" for a Unix socket) may switch."""
    if policy == "any":
        return True
    if policy == "off":
        return False
    if peer == "local":
        return True
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


class WhisperModels:
    """The engine in use (`current`), replaced by a switch once its successor has loaded."""

    def __init__(self, engine: WhisperEngine) -> None:
        self.current = engine
        self._switching = asyncio.Lock()

    async def switch(
        self, request: LoadRequest, report: ProgressReport
    ) -> tuple[WhisperEngine, float]:
        """Load `request`'s model (downloading it when it is not on disk) and make it current;
        returns it and the seconds it took. Raises ServiceError and keeps the current one on
        failure."""
        async with self._switching:
            started = time.monotonic()
            current = self.current
            same = (current.settings.model, current.settings.device) == (
                request.model,
                request.device,
            )
            if same and current.is_loaded:
                return current, 0.0
            candidate = WhisperEngine(
                replace(current.settings, model=request.model, device=request.device),
                current.store,
            )
            if candidate.find_model_dir() is None:
                await report("downloading")
                await asyncio.to_thread(candidate.ensure_on_disk)
            await report("loading")
            await asyncio.to_thread(candidate.load)
            self.current = candidate
            seconds = time.monotonic() - started
            _LOGGER.info(
                "Switched from whisper model %s (%s) to %s (%s)",
                current.settings.model,
                current.settings.device,
                request.model,
                request.device,
            )
            return candidate, seconds
