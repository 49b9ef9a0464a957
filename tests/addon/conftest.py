"""Shared fixtures for the add-on tests: the offline models, a warmed speaker encoder, the
checked hub client and a fake Telegram.

`contract` and `client` need a `hub` fixture (a running HubProcess). A module that runs Kiwi
declares `stack = stack_fixture(...)` (tests/support/pipeline_stack.py) and gets `hub` from
here; a module that starts a hub differently defines its own `hub`."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import offline_models, pipeline_stack
from tests.support.fake_telegram import FakeTelegram
from tests.support.hub_openapi import CheckedClient, OpenApiContract, fetch_contract
from tests.support.hub_process import HubProcess
from tests.support.pipeline_stack import PipelineStack

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
    """A `models/` directory (whisper/, piper/, openwakeword/), the one stacks use too."""
    return pipeline_stack.offline_models_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def voice_encoder() -> Any:
    """resemblyzer's VoiceEncoder with its shipped weights, numba code already compiled."""
    return offline_models.warm_resemblyzer()


@pytest.fixture(scope="module")
def hub(stack: PipelineStack) -> HubProcess:
    """The hub of the module's `stack`."""
    assert stack.hub is not None
    return stack.hub


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
