"""The speaker service's `info`.

Wyoming's `Info` has no section for speaker identification, so the standard sections stay empty
(Home Assistant correctly sees nothing it can use) and a `speaker` section is added in the same
shape as the others: a list of programs, each an artifact with `models`. The program also
states its decision thresholds, its concurrency, its profile store (and a store file that was
set aside at start), the background cohort, and the event types it speaks. `installed` is true
when the encoder's weights are on disk and have not failed to load (the description says
whether it is still loading). `problems` lists what a user should know is wrong, in words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from wyoming.event import Event
from wyoming.info import Attribution, Info

from kiwi_voice.common.info import KIWI_VERSION

from . import protocol
from .cohort import BackgroundCohort
from .settings import READY_SAMPLES, Thresholds
from .store import SetAside

PROGRAM_NAME = "kiwi-speaker"
MODEL_NAME = "resemblyzer-voice-encoder"
MODEL_VERSION = "0.1.4"  # resemblyzer's release whose pretrained.pt this runs
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
    encoder: EncoderState,
    thresholds: Thresholds,
    workers: int,
    profile_count: int,
    *,
    store_path: str,
    set_aside: SetAside | None,
    background: BackgroundCohort,
    ready_profiles: int,
) -> Event:
    if encoder.loaded:
        status = f"loaded from {encoder.weights}"
    elif encoder.problem:
        status = f"NOT AVAILABLE: {encoder.problem}"
    else:
        status = f"loading from {encoder.weights}"
    model = {
        "name": MODEL_NAME,
        "attribution": asdict(RESEMBLYZER_ATTRIBUTION),
        "installed": encoder.on_disk,
        "description": (
            f"resemblyzer's GE2E voice encoder on onnxruntime, 256-d embeddings of 16 kHz "
            f"speech ({status})"
        ),
        "version": MODEL_VERSION,
        "languages": [],  # voice embeddings do not depend on the language spoken
    }
    problems = []
    if encoder.problem:
        problems.append(f"speaker identification unavailable: {encoder.problem}")
    if set_aside is not None:
        problems.append(
            f"the profile store {set_aside.original} could not be used at start "
            f"({set_aside.reason}); it was kept as {set_aside.moved_to} and a new store started"
        )
    if encoder.loaded and background.problem:
        problems.append(background.problem)
    program = {
        "name": PROGRAM_NAME,
        "attribution": asdict(RESEMBLYZER_ATTRIBUTION),
        "installed": encoder.on_disk,
        "description": (
            f"open-set speaker identification: one encoder shared by all connections, "
            f"{workers} embedding thread(s); a voice is named when its cosine reaches the "
            f"profile's calibrated threshold (at least {thresholds.identify:g}), its normalised "
            f"score {thresholds.score:g} and its margin {thresholds.margin:g}; self (echo) "
            f"threshold {thresholds.self_echo:g}"
        ),
        "version": KIWI_VERSION,
        "models": [model],
        "thresholds": thresholds.as_dict(),
        "workers": workers,
        "profile_count": profile_count,
        "ready_profiles": ready_profiles,
        "samples_to_be_ready": READY_SAMPLES,
        "store": {
            "path": store_path,
            "set_aside": asdict(set_aside) if set_aside else None,
        },
        "background_cohort": {
            "voices": len(background.voices),
            "in_use": background.problem is None,
            "problem": background.problem,
        },
        "problems": problems,
        "events": EVENT_TYPES,
    }
    event = Info().event()
    event.data["speaker"] = [program]
    return event
