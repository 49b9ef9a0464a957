"""The speaker service's `info`.

Wyoming's `Info` has no section for speaker identification, so the standard sections stay empty
(Home Assistant correctly sees nothing it can use) and a `speaker` section is added in the same
shape as the others: a list of programs, each an artifact with `models`. The program also
states its thresholds, its concurrency, how many profiles it holds and the event types it
speaks. `installed` is true when the encoder's weights are on disk and have not failed to load
(the description says whether it is still loading).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from wyoming.event import Event
from wyoming.info import Attribution, Info

from kiwi_voice.common.info import KIWI_VERSION, package_version

from . import protocol
from .settings import Thresholds

PROGRAM_NAME = "kiwi-speaker"
RESEMBLYZER_ATTRIBUTION = Attribution(
    name="Resemble AI (Resemblyzer)", url="https://github.com/resemble-ai/Resemblyzer"
)
EVENT_TYPES = [
    protocol.ENROLL,
    protocol.IDENTIFY,
    protocol.LIST,
    protocol.UPDATE,
    protocol.DELETE,
]


@dataclass(frozen=True)
class EncoderState:
    """What `describe` says about the encoder: where its weights are and whether it runs."""

    weights: str | None
    loaded: bool
    problem: str | None  # None while loading or when loaded
    on_disk: bool  # weights present and not (yet) failed: `installed`, loading or not


def build_info_event(
    encoder: EncoderState, thresholds: Thresholds, workers: int, profile_count: int
) -> Event:
    resemblyzer = package_version("resemblyzer") or "?"
    if encoder.loaded:
        status = f"loaded from {encoder.weights}"
    elif encoder.problem:
        status = f"NOT AVAILABLE: {encoder.problem}"
    else:
        status = f"loading from {encoder.weights}"
    model = {
        "name": "resemblyzer-voice-encoder",
        "attribution": asdict(RESEMBLYZER_ATTRIBUTION),
        "installed": encoder.on_disk,
        "description": f"GE2E voice encoder, 256-d embeddings of 16 kHz speech ({status})",
        "version": resemblyzer,
        "languages": [],  # voice embeddings do not depend on the language spoken
    }
    program = {
        "name": PROGRAM_NAME,
        "attribution": asdict(RESEMBLYZER_ATTRIBUTION),
        "installed": encoder.on_disk,
        "description": (
            f"speaker identification with resemblyzer {resemblyzer}; one encoder shared by "
            f"all connections, {workers} embedding thread(s); identify threshold "
            f"{thresholds.identify:g}, self (echo) threshold {thresholds.self_echo:g} cosine"
        ),
        "version": KIWI_VERSION,
        "models": [model],
        "thresholds": {"identify": thresholds.identify, "self": thresholds.self_echo},
        "workers": workers,
        "profile_count": profile_count,
        "events": EVENT_TYPES,
    }
    event = Info().event()
    event.data["speaker"] = [program]
    return event
