"""`kiwi` with no models and no network: everything starts, and what is missing is reported.

Downloads point at a closed local port (and the wake service's GitHub download fails without a
network), so every model is missing; the services must stay up and answer with `model_missing`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize

from kiwi_voice.launcher.probe import wait_for_ports
from kiwi_voice.launcher.settings import PORT_VARIABLES
from tests.support.ports import free_ports
from tests.support.waiting import until_async

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def offline_kiwi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, int], Path]]:
    root = tmp_path_factory.mktemp("kiwi-offline")
    ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIWI_")}
    env.pop("SUPERVISOR_TOKEN", None)
    env |= {variable: str(ports[name]) for name, (variable, _) in PORT_VARIABLES.items()}
    env |= {
        "KIWI_DATA_DIR": str(root / "data"),
        "HF_HUB_OFFLINE": "1",
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "KIWI_PIPER_VOICES_URL": "http://127.0.0.1:9/voices",
    }
    log = root / "kiwi.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "kiwi_voice.launcher"],  # no options: the shipped defaults
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield ports, log
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def _describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client, asyncio.timeout(10):
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                return Info.from_event(event)
    raise AssertionError("no info")


async def test_everything_starts_and_says_what_is_missing(
    offline_kiwi: tuple[dict[str, int], Path],
) -> None:
    ports, log = offline_kiwi
    missing = await wait_for_ports("127.0.0.1", ports.values(), wait_s=200)
    assert missing == [], log.read_text()[-4000:]

    stt = await _describe(ports["stt"])
    assert [m.name for m in stt.asr[0].models] == ["base"], "the default model, not on disk"

    async with AsyncTcpClient("127.0.0.1", ports["combined"]) as client, asyncio.timeout(60):
        await client.write_event(Synthesize(text="Is anybody there?").event())
        event = await client.read_event()
    assert event is not None
    assert event.type == "error"
    assert event.data["code"] == "model_missing"

    tts = await _describe(ports["tts"])
    voice = next(v for v in tts.tts[0].voices if v.name == "en_US-joe-medium")
    assert voice.installed is False, "after the failed download, describe says so"

    report = await _log_line(log, "wake is up without", limit_s=30)
    assert "hey_jarvis" in report  # the default wake word, whose model is not on disk here


async def _log_line(log: Path, text: str, limit_s: float) -> str:
    """The first line of kiwi's output holding `text`, waiting for it to be written."""

    async def holding_text() -> str | None:
        text_now = await asyncio.to_thread(log.read_text, encoding="utf-8")
        return next((line for line in text_now.splitlines() if text in line), None)

    return await until_async(
        holding_text, f"{text!r} in kiwi's output", timeout_s=limit_s, every_s=0.2
    )
