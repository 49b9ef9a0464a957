"""The combined endpoint's `info`: asr, tts and wake merged from the three backend services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from wyoming.client import AsyncClient
from wyoming.info import Describe, Info

from .routing import Mode

_LOGGER = logging.getLogger(__name__)

# Home Assistant waits 1 s for `info` (homeassistant/components/wyoming/data.py), so a backend
# that is slower than this is answered from the last info it gave.
DESCRIBE_TIMEOUT_S = 0.8


async def describe_backend(uri: str, limit_s: float = DESCRIBE_TIMEOUT_S) -> Info | None:
    """Ask one Wyoming service for its `info`; None when it does not answer in time."""
    try:
        async with asyncio.timeout(limit_s), AsyncClient.from_uri(uri) as client:
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    return Info.from_event(event)
    except (OSError, TimeoutError, ValueError) as err:
        _LOGGER.debug("No info from %s: %s", uri, err)
    return None


class InfoCollector:
    """Builds the merged info, remembering each backend's last answer.

    A backend that is restarting (the launcher or s6 brings it back) keeps its entities in Home
    Assistant: its last known programs are offered until it answers again.
    """

    def __init__(self, backends: Mapping[Mode, str]) -> None:
        self._backends = dict(backends)
        self._last_known: dict[Mode, Info] = {}

    async def merged_info(self) -> Info:
        modes = list(self._backends)
        answers = await asyncio.gather(*(describe_backend(self._backends[m]) for m in modes))
        for mode, info in zip(modes, answers, strict=True):
            if info is not None:
                self._last_known[mode] = info
            elif mode not in self._last_known:
                _LOGGER.warning(
                    "The %s service at %s does not answer yet", mode, self._backends[mode]
                )
        return merge_infos(self._last_known)


def merge_infos(infos: Mapping[Mode, Info]) -> Info:
    """Take from each backend only the section it owns (a service may advertise others)."""
    merged = Info()
    if (asr := infos.get(Mode.ASR)) is not None:
        merged.asr = list(asr.asr)
    if (tts := infos.get(Mode.TTS)) is not None:
        merged.tts = list(tts.tts)
    if (wake := infos.get(Mode.WAKE)) is not None:
        merged.wake = list(wake.wake)
    return merged
