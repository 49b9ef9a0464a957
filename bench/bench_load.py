"""Load: 10 live /api/audio microphones and 100 /api/events listeners for 60 s, with real turns.

The whole voice pipeline on the offline models (kiwi-wake, kiwi-stt, kiwi-speaker, kiwi-tts),
a local Home Assistant and a local Claude, the hub in front (tests/support/pipeline_stack.py).
Each microphone streams 16 kHz PCM in real time; "hey jarvis, turn on the kitchen light" is said
every `GAP_S` seconds round-robin over the microphones, so turns keep coming; a wake word that
comes while another turn runs barges in on it (Kiwi is one voice), which the summary counts.
The same driver runs the 10 s CI version (tests/addon/test_faults_load.py).

Measured in the same run, as ratios: a completed turn's end-of-speech-to-first-audio and total
time under this load against the same turn with one microphone and one listener (the idle hub);
each process's peak resident memory under load against its own at rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from tests.support import offline_models
from tests.support.load_run import LoadResult, run_load, trimmed_utterance
from tests.support.pipeline_stack import PipelineStack, start_stack
from tests.support.speech import espeak_pcm

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work" / "load"
LOAD_SECONDS = 60.0
MICROPHONES = 10
LISTENERS = 100
# One utterance every 5.5 s, round-robin: each microphone speaks about once a minute, and a turn
# (~2.7 s of speech, then the answer) mostly ends before the next wake word barges in.
GAP_S = 5.5
BASELINE_TURNS = 3


def _load(stack: PipelineStack, utterance: bytes, **kwargs: Any) -> LoadResult:
    hub = stack.hub
    assert hub is not None
    pids = {"hub": hub.process.pid, **{n: s.process.pid for n, s in stack.services.items()}}
    return asyncio.run(run_load(f"ws://127.0.0.1:{hub.port}", hub.token, utterance, pids, **kwargs))


def _ratio(loaded: float | None, idle: float | None) -> float | None:
    return round(loaded / idle, 2) if loaded and idle else None


def run(results: dict[str, Any]) -> None:
    section: dict[str, Any] = results.setdefault("load", {})
    notes: list[str] = section.setdefault("notes", [])
    notes.append(
        f"{MICROPHONES} real-time microphones + {LISTENERS} event listeners for "
        f"{LOAD_SECONDS:.0f} s on {os.cpu_count()} CPUs (load average {os.getloadavg()[0]:.1f} "
        "at start); the clients run on the same machine as the hub and the services"
    )
    models = WORK_DIR / "models"
    offline_models.populate_models_dir(models)
    utterance = trimmed_utterance(espeak_pcm("hey jarvis, turn on the kitchen light"))
    stack = start_stack(models, WORK_DIR, services=("stt", "tts", "wake", "speaker"))
    try:
        idle = _load(
            stack,
            utterance,
            seconds=BASELINE_TURNS * 4.0 + 2.0,
            microphones=1,
            listeners=1,
            gap_s=4.0,
        )
        loaded = _load(
            stack,
            utterance,
            seconds=LOAD_SECONDS,
            microphones=MICROPHONES,
            listeners=LISTENERS,
            gap_s=GAP_S,
        )
    finally:
        stack.stop()
    summary = loaded.summary()
    baseline = idle.summary()
    section["under_load"] = summary
    section["idle_one_microphone"] = {
        k: baseline[k]
        for k in (
            "utterances_sent",
            "turns_ended",
            "completed_turns_first_audio_ms_median",
            "completed_turns_total_ms_median",
            "errors",
        )
    }
    section["errors_under_load"] = loaded.errors()[:20]
    comparisons = [
        {
            "name": "first audio after end of speech (ms)",
            "kiwi": summary["completed_turns_first_audio_ms_median"],
            "baseline": baseline["completed_turns_first_audio_ms_median"],
            "baseline_name": "same hub, 1 microphone",
            "lower_is_better": True,
        },
        {
            "name": "turn total (ms)",
            "kiwi": summary["completed_turns_total_ms_median"],
            "baseline": baseline["completed_turns_total_ms_median"],
            "baseline_name": "same hub, 1 microphone",
            "lower_is_better": True,
        },
    ]
    for name, rss in summary["rss_mb"].items():
        comparisons.append(
            {
                "name": f"{name} peak RSS under load (MiB)",
                "kiwi": rss["peak"],
                "baseline": rss["start"],
                "baseline_name": f"{name} at rest",
                "lower_is_better": True,
            }
        )
    for comparison in comparisons:
        comparison["ratio"] = _ratio(comparison["kiwi"], comparison["baseline"])
    section["comparisons"] = comparisons
    section["latency_ratio_loaded_over_idle"] = comparisons[0]["ratio"]
    _LOGGER.info("load: %s", summary)


if __name__ == "__main__":
    import json

    logging.basicConfig(level=logging.INFO)
    measured: dict[str, Any] = {}
    run(measured)
    print(json.dumps(measured, indent=2))
