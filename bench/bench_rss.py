"""Resident memory (VmRSS) of every process Kiwi runs, on the real default models, against its
bare engine.

Kiwi runs as `make run` runs it: `python -m kiwi_voice.launcher` starts the hub, the four Wyoming
services and the combined Wyoming endpoint (tests/support/launcher_stack.py) on the default real
models `make setup` installs (Whisper base as int8, piper en_US-joe-medium, openWakeWord's
hey_jarvis, resemblyzer's encoder; tests/support/real_models.py). Each process's RSS is read from
/proc at rest (everything up, the voice encoder warm) and again after one spoken turn went
through every engine (POST /api/audio/file with "hey jarvis, turn on the kitchen light").
The add-on's target: at most 800 MB for all of them after a turn (issue 13, item 6).

Peers, measured in the same run on the same model files: each engine loaded bare in a plain
Python process that runs one inference (faster-whisper with its default compute type, which
converts Whisper base to float32 on a CPU; piper's own `PiperVoice.load`; openWakeWord's own
`Model`; resemblyzer); for the hub and the combined endpoint, a Python that imports their
modules but serves nothing; an empty Python for the launcher. The ratio is Kiwi's process over
its peer.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import urllib.request
import wave
from pathlib import Path
from typing import Any

from tests.support import offline_models, real_models
from tests.support.launcher_stack import LauncherStack, start_launcher_stack
from tests.support.load_run import rss_mb
from tests.support.speech import espeak_pcm
from tests.support.wyoming_process import ADDON_BIN

_LOGGER = logging.getLogger(__name__)

WORK_DIR = Path(__file__).resolve().parent / "work" / "rss"
PROCESSES = ("hub", "stt", "tts", "wake", "speaker", "combined")
TARGET_TOTAL_MB = 800
# The add-on's defaults (launcher/options.py) on the real models; hey_jarvis so that the turn's
# wake word runs on an openWakeWord model in kiwi-wake.
REAL_OPTIONS = {
    "stt_model": real_models.WHISPER_MODEL,
    "stt_compute_type": "int8",
    "tts_voice": real_models.PIPER_VOICE,
    "wake_word": "hey_jarvis",
}
_PRINT_RSS = """
for line in open("/proc/self/status"):
    if line.startswith("VmRSS:"):
        print(int(line.split()[1]) / 1024)
"""
# Each peer loads what the Kiwi process loads and runs one inference, then prints its RSS.
PEERS: dict[str, tuple[str, str]] = {
    "stt": (
        "faster-whisper WhisperModel",
        """
import numpy as np
from faster_whisper import WhisperModel
model = WhisperModel({whisper!r}, device="cpu")
pcm = np.frombuffer(open({voice_pcm!r}, "rb").read(), dtype="<i2").astype(np.float32) / 32768
segments, _info = model.transcribe(pcm, language="en")
list(segments)
""",
    ),
    "tts": (
        "piper PiperVoice",
        """
from piper import PiperVoice
voice = PiperVoice.load({piper!r})
list(voice.synthesize("The kitchen light is now on."))
""",
    ),
    "wake": (
        "openwakeword Model (onnx)",
        """
import numpy as np
from openwakeword.model import Model
model = Model(
    wakeword_models=[{hey_jarvis!r}],
    inference_framework="onnx",
    melspec_model_path={melspec!r},
    embedding_model_path={embedding!r},
)
for _ in range(25):
    model.predict(np.zeros(1280, dtype=np.int16))
""",
    ),
    "speaker": (
        "resemblyzer VoiceEncoder",
        """
import numpy as np
from resemblyzer import VoiceEncoder, preprocess_wav
encoder = VoiceEncoder(device="cpu", verbose=False)
pcm = np.frombuffer(open({voice_pcm!r}, "rb").read(), dtype="<i2").astype(np.float32) / 32768
encoder.embed_utterance(preprocess_wav(pcm))
""",
    ),
    "hub": ("the hub's modules imported, not serving", "import kiwi_voice.hub.__main__"),
    "combined": ("its modules imported, not serving", "import kiwi_voice.combined.__main__"),
    "launcher": ("an empty Python", "pass"),
}


def _peer_rss(script: str, env: dict[str, str]) -> float:
    result = subprocess.run(
        [str(ADDON_BIN / "python"), "-c", script + _PRINT_RSS],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env=env,
    )
    return float(result.stdout.strip().splitlines()[-1])


def _stack_rss(stack: LauncherStack) -> dict[str, float]:
    pids = {name: stack.child_pid(name) for name in PROCESSES}
    pids["launcher"] = stack.launcher.pid
    return {name: round(rss_mb(pid) or 0.0, 1) for name, pid in pids.items()}


def _one_turn(stack: LauncherStack) -> dict[str, Any]:
    pcm = espeak_pcm("hey jarvis") + espeak_pcm("turn on the kitchen light")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(pcm)
    request = urllib.request.Request(
        stack.base_url + "/api/audio/file",
        data=buffer.getvalue(),
        headers={"Authorization": f"Bearer {stack.token}", "Content-Type": "audio/wav"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        return dict(json.load(answer))


def run(results: dict[str, Any]) -> None:
    # A fresh section: `--update` starts from the last results, whose notes must not pile up.
    section: dict[str, Any] = {}
    results["rss"] = section
    notes: list[str] = section.setdefault("notes", [])
    notes.append(
        "VmRSS in MiB from /proc; the real default models (Whisper base int8, piper "
        "en_US-joe-medium, openWakeWord hey_jarvis, resemblyzer's encoder)"
    )
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    stack = start_launcher_stack(
        WORK_DIR / f"run-{len(list(WORK_DIR.glob('run-*')))}",
        REAL_OPTIONS,
        bundled_models=real_models.real_models_root(),
    )
    try:
        at_rest = _stack_rss(stack)
        turn = _one_turn(stack)
        after_turn = _stack_rss(stack)
    finally:
        stack.stop()
    notes.append(
        f"the turn: wake word detected {turn['wake_word_detected']}, "
        f"{len(turn['turns'])} turn(s), errors {[t['errors'] for t in turn['turns']]}"
    )

    oww = real_models.openwakeword_dir()
    voice_pcm = WORK_DIR / "voice.pcm"
    voice_pcm.write_bytes(espeak_pcm("my voice is my passport, verify me"))
    paths = {
        "whisper": str(real_models.whisper_dir() / real_models.WHISPER_MODEL),
        "piper": str(real_models.joe_voice_path()),
        "hey_jarvis": str(oww / "hey_jarvis_v0.1.onnx"),
        "melspec": str(oww / "melspectrogram.onnx"),
        "embedding": str(oww / "embedding_model.onnx"),
        "voice_pcm": str(voice_pcm),
    }
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "NUMBA_CACHE_DIR": str(offline_models.configure_numba_cache()),
    }
    processes: dict[str, Any] = {}
    comparisons: list[dict[str, Any]] = []
    for name in (*PROCESSES, "launcher"):
        peer_name, script = PEERS[name]
        try:
            peer = round(_peer_rss(script.format(**paths), env), 1)
        except (subprocess.SubprocessError, OSError, ValueError) as err:
            notes.append(f"{name}: the bare peer could not be measured: {err}"[:300])
            peer = None
        processes[name] = {
            "at_rest_mb": at_rest[name],
            "after_turn_mb": after_turn[name],
            "bare_peer": peer_name,
            "bare_peer_mb": peer,
        }
        comparisons.append(
            {
                "name": f"{name} RSS after a turn, real models (MiB)",
                "kiwi": after_turn[name],
                "baseline": peer,
                "baseline_name": peer_name,
                "lower_is_better": True,
                "ratio": round(after_turn[name] / peer, 2) if peer else None,
            }
        )
    section["processes"] = processes
    section["total_mb_after_turn"] = round(sum(after_turn.values()), 1)
    section["total_mb_at_rest"] = round(sum(at_rest.values()), 1)
    section["target_total_mb"] = TARGET_TOTAL_MB
    section["within_target"] = section["total_mb_after_turn"] <= TARGET_TOTAL_MB
    section["comparisons"] = comparisons
    _LOGGER.info("rss: %s", processes)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    measured: dict[str, Any] = {}
    run(measured)
    print(json.dumps(measured, indent=2))
