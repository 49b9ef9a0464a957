"""Shared fixtures for the add-on tests: the offline models, a warmed speaker encoder, the
checked hub client and a fake Telegram.

`contract` and `client` need a `hub` fixture (a running HubProcess), which each module that
uses them defines, since how the hub is started differs per module."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import offline_models
from tests.support.fake_telegram import FakeTelegram
from tests.support.hub_openapi import CheckedClient, OpenApiContract, fetch_contract
from tests.support.hub_process import HubProcess

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


@pytest.fixture(scope="module")
def contract(hub: HubProcess) -> OpenApiContract:
    """The OpenAPI document served by the module's `hub`."""
    return fetch_contract(hub)


@pytest.fixture
async def client(hub: HubProcess, contract: OpenApiContract) -> AsyncIterator[CheckedClient]:
    """A client of the module's `hub` that checks every answer against `contract`."""
    async with aiohttp.ClientSession() as session:
        yield CheckedClient(session, hub.base_url, hub.token, contract)


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    """A fake Telegram Bot API server."""
    fake = FakeTelegram()
    fake.start()
    yield fake
    fake.stop()
