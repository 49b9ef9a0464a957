"""Session fixtures for the add-on tests: the offline models and a warmed speaker encoder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import offline_models

# Before any engine is imported, here and in every service process a test starts:
# faster-whisper must never ask the model hub, and numba's compiled code goes to the cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
offline_models.configure_numba_cache()


@pytest.fixture(scope="session")
def offline_whisper_dir() -> Path:
    """The tiny CTranslate2 Whisper model directory ("tiny-random")."""
    return offline_models.whisper_model_dir()


@pytest.fixture(scope="session")
def offline_piper_voice() -> Path:
    """The tiny piper voice `en_US-kiwi_test-x_low.onnx` (config beside it)."""
    return offline_models.piper_voice_path()


@pytest.fixture(scope="session")
def offline_wakeword_dir() -> Path:
    """openWakeWord's real pretrained ONNX models (features + hey_jarvis, alexa, ...)."""
    return offline_models.openwakeword_models_dir()


@pytest.fixture(scope="session")
def offline_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `models/` directory (whisper/, piper/, openwakeword/) inside a fresh data dir."""
    models_dir = tmp_path_factory.mktemp("kiwi-data") / "models"
    offline_models.populate_models_dir(models_dir)
    return models_dir


@pytest.fixture(scope="session")
def voice_encoder() -> Any:
    """resemblyzer's VoiceEncoder with its shipped weights, numba code already compiled."""
    return offline_models.warm_resemblyzer()
