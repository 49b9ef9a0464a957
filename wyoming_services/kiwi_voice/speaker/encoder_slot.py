"""The encoder of a running service: loading in the background, loaded, or missing and why.

The service listens at once; loading (imports, weights, the ONNX session), the warm-up and the
background cohort (which must match the encoder, see cohort.py) come right after start, in the
engine executor. Requests that need the encoder wait for that to finish; those that do not
(list, update, delete, describe) are answered meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.executor import EngineExecutor

from .cohort import BackgroundCohort, load_background
from .encoder import VoiceEncoder
from .info import EncoderState

_LOGGER = logging.getLogger(__name__)


class EncoderSlot:
    def __init__(self, weights: Path | None, missing_reason: str | None = None) -> None:
        self.weights = weights
        self.encoder: VoiceEncoder | None = None
        self.problem = missing_reason if weights is None else None
        self.background = BackgroundCohort.unused("the voice encoder is not loaded yet")
        self._done = asyncio.Event()

    @property
    def state(self) -> EncoderState:
        return EncoderState(
            weights=str(self.weights) if self.weights else None,
            loaded=self.encoder is not None,
            problem=self.problem,
            on_disk=self.weights is not None and self.weights.is_file() and not self.problem,
        )

    async def load(self, executor: EngineExecutor) -> None:
        """Load and warm the encoder; a failure is kept as the reason requests are refused."""
        try:
            if self.weights is None:
                return
            if not self.weights.is_file():
                self.problem = f"voice encoder weights not found at {self.weights}"
                return
            encoder = await executor.run(VoiceEncoder, self.weights)
            probe = await executor.run(encoder.warm_up)
            self.background = await executor.run(load_background, probe)
            if self.background.problem:
                _LOGGER.warning("%s", self.background.problem)
            self.encoder = encoder
        except Exception as err:  # the service stays up and says why it cannot identify
            _LOGGER.exception("Cannot load the voice encoder")
            self.problem = f"voice encoder failed to load: {err}"
        finally:
            if self.problem:
                _LOGGER.error("Speaker identification unavailable: %s", self.problem)
            self._done.set()

    async def get(self) -> VoiceEncoder:
        await self._done.wait()
        if self.encoder is None:
            raise ServiceError(ErrorCode.MODEL_MISSING, self.problem or "no voice encoder")
        return self.encoder
