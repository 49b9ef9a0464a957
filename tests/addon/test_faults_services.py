"""SIGKILL each Wyoming service mid-utterance while the launcher `kiwi` supervises the stack.

For each of stt, speaker, tts and wake: a turn is under way (the user is speaking, or Kiwi is),
the service is killed with SIGKILL, and
- an ERROR event names the service as its source,
- the hub stays up (same process, /api/health answers),
- `kiwi` starts the service again on its port, and the next turn works.
The seconds from the service answering `describe` again to the next turn's end are printed
(pytest -s) and only checked against a generous bound: speed belongs to benchmarks.

Everything is real: `python -m kiwi_voice.launcher` with the offline models, the hub and the
services it starts, a local Home Assistant and a local Claude, aiohttp WebSocket clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kiwi_voice.launcher.settings import PORT_VARIABLES
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_homeassistant import FakeHomeAssistant
from tests.support.offline_models import (
    PIPER_VOICE_NAME,
    WHISPER_MODEL_NAME,
    configure_numba_cache,
    populate_models_dir,
)
from tests.support.pipeline_client import AudioClient, EventLog
from tests.support.ports import free_ports
from tests.support.speech import espeak_pcm
from tests.support.wyoming_process import describe

pytestmark = [pytest.mark.timeout(300)]

START_LIMIT_S = 180.0  # the whole stack on a loaded 2-core machine
BACK_LIMIT_S = 60.0  # the launcher's backoff (1 s) plus the service loading its engine
TURN_LIMIT_S = 30.0
SILENCE = b"\x00\x00" * 1600  # 100 ms
OPTIONS = {
    "language": "en",
    "stt_model": WHISPER_MODEL_NAME,
    "tts_voice": PIPER_VOICE_NAME,
    "wake_word": "hey_jarvis",
    "wake_threshold": 0.5,
    "soul": "default",
    "anthropic_model": "claude-haiku-4-5",
    "guest_policy": "allow",
    "unknown_speaker_policy": "allow",
    "log_level": "info",
}


@dataclass
class Stack:
    launcher: subprocess.Popen[bytes]
    ports: dict[str, int]
    data_dir: Path
    log: Path
    claude: FakeAnthropic
    homeassistant: FakeHomeAssistant
    recovery_s: dict[str, float]

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    @property
    def token(self) -> str:
        return (self.data_dir / "api_token").read_text(encoding="utf-8").strip()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.ports['hub']}{path}?token={self.token}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['hub']}/api/health"

    def child_pid(self, name: str) -> int:
        """The pid of the launcher's child running `python -m kiwi_voice.<name>`."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.launcher.pid and f"kiwi_voice.{name}".encode() in cmdline:
                return int(entry.name)
        raise LookupError(f"kiwi runs no {name} process:\n{self.output()[-3000:]}")


def _environ(
    data_dir: Path, ports: dict[str, int], claude: FakeAnthropic, ha: FakeHomeAssistant
) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIWI_")}
    env.pop("SUPERVISOR_TOKEN", None)
    env.update({variable: str(ports[name]) for name, (variable, _) in PORT_VARIABLES.items()})
    env.update(
        {
            "KIWI_DATA_DIR": str(data_dir),
            "KIWI_BIND_HOST": "127.0.0.1",
            "HF_HUB_OFFLINE": "1",
            "NUMBA_CACHE_DIR": str(configure_numba_cache()),
            "KIWI_PIPER_VOICES_URL": "http://127.0.0.1:9/voices",
            "HF_ENDPOINT": "http://127.0.0.1:9",
            "KIWI_HOST_AUDIO": "off",
            "ANTHROPIC_API_KEY": claude.api_key,
            "ANTHROPIC_BASE_URL": claude.url,
            "KIWI_HA_URL": ha.url,
            "KIWI_HA_TOKEN": ha.token,
        }
    )
    return env


async def _wait_until_up(stack: Stack) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    pending = set(stack.ports)
    async with aiohttp.ClientSession() as http:
        while pending:
            assert stack.launcher.poll() is None, stack.output()[-4000:]
            assert time.monotonic() < deadline, f"not up:\n{stack.output()[-4000:]}"
            for name in sorted(pending):
                if name == "hub":
                    try:
                        async with http.get(stack.health_url) as answer:
                            up = answer.status == 200
                    except aiohttp.ClientError:
                        up = False
                else:
                    up = await _describes(stack.ports[name])
                if up:
                    pending.discard(name)
            await asyncio.sleep(0.25)
    # kiwi-speaker answers at once and warms its encoder after; a turn needs it warm.
    while "Voice encoder warm" not in stack.output():
        assert time.monotonic() < deadline, f"no warm encoder:\n{stack.output()[-4000:]}"
        await asyncio.sleep(0.25)


async def _describe(port: int) -> dict[str, Any] | None:
    try:
        return await asyncio.to_thread(describe, port, 2.0)
    except (OSError, ValueError, RuntimeError):
        return None


async def _describes(port: int) -> bool:
    return await _describe(port) is not None


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("faults-services")
    data_dir = root / "data"
    populate_models_dir(data_dir / "models")
    # The launcher points kiwi-speaker's numba cache into the data dir: share the tests' one,
    # so resemblyzer loads its compiled kernels instead of compiling them (~20 s).
    (data_dir / "cache").mkdir(parents=True)
    (data_dir / "cache" / "numba").symlink_to(configure_numba_cache(), target_is_directory=True)
    options = root / "options.json"
    options.write_text(json.dumps(OPTIONS), encoding="utf-8")
    ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
    claude, homeassistant = FakeAnthropic(), FakeHomeAssistant()
    claude.start()
    homeassistant.start()
    log = root / "kiwi.log"
    with log.open("wb") as sink:
        launcher = subprocess.Popen(
            [sys.executable, "-m", "kiwi_voice.launcher", "--options", str(options)],
            env=_environ(data_dir, ports, claude, homeassistant),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(launcher, ports, data_dir, log, claude, homeassistant, {})
    try:
        asyncio.run(_wait_until_up(stack))
        yield stack
    finally:
        if launcher.poll() is None:
            launcher.send_signal(signal.SIGINT)  # Ctrl-C: kiwi stops every child
            try:
                launcher.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait(10)
        claude.stop()
        homeassistant.stop()
    print("seconds from the service back to the next turn's end:", stack.recovery_s)


@pytest.fixture
async def events(stack: Stack) -> AsyncIterator[EventLog]:
    async with (
        aiohttp.ClientSession() as http,
        EventLog.connect(http, stack.url("/api/events")) as log,
    ):
        yield log


async def _error_from(events: EventLog, source: str) -> dict[str, object]:
    error = await events.wait("ERROR", wait_s=TURN_LIMIT_S, source=source)
    return error["data"]


async def _kill(stack: Stack, name: str) -> None:
    os.kill(stack.child_pid(name), signal.SIGKILL)


async def _back(stack: Stack, name: str) -> float:
    """Wait until the launcher restarted `name` and it can work; when that happened.

    kiwi-speaker listens at once and loads its encoder after (identify requests wait for it):
    for it, "back" is when `describe` says the encoder is loaded, and the seconds it listened
    before that are recorded too."""
    deadline = time.monotonic() + BACK_LIMIT_S
    listening_at = None
    while True:
        info = await _describe(stack.ports[name])
        if info is not None and listening_at is None:
            listening_at = time.monotonic()
        if info is not None and (name != "speaker" or _encoder_loaded(info)):
            break
        assert time.monotonic() < deadline, f"{name} did not come back:\n{stack.output()[-4000:]}"
        await asyncio.sleep(0.1)
    ready_at = time.monotonic()
    if name == "speaker" and listening_at is not None:
        stack.recovery_s["speaker_listening_before_encoder_loaded"] = round(
            ready_at - listening_at, 2
        )
    return ready_at


def _encoder_loaded(info: dict[str, Any]) -> bool:
    models = info.get("speaker", [{}])[0].get("models", [{}])  # type: ignore[union-attr]
    return "(loaded from" in str(models[0].get("description", ""))


async def _hub_is_the_same_process(stack: Stack, hub_pid: int) -> None:
    assert stack.child_pid("hub") == hub_pid, "the hub was restarted"
    async with aiohttp.ClientSession() as http, http.get(stack.health_url) as answer:
        assert answer.status == 200


async def _push_to_talk(
    client: AudioClient, pcm: bytes, during: object = None
) -> dict[str, object]:
    """Speak `pcm` with push-to-talk; run `during` (a coroutine) halfway; the turn's end frame."""
    ends = len(client.frames("end"))
    await client.send({"type": "start_speaking"})
    half = len(pcm) // 2 // 3200 * 3200
    await client.send_audio(pcm[:half])
    if during is not None:
        await during
    await client.send_audio(pcm[half:])
    await client.send({"type": "end_speaking"})
    await client.wait(lambda _r: len(client.frames("end")) > ends, TURN_LIMIT_S)
    return client.frames("end")[ends]


COMMAND = espeak_pcm("what is the weather like tomorrow")


@pytest.mark.parametrize("name", ["stt", "speaker"])
async def test_killing_a_service_that_hears_the_user(
    stack: Stack, events: EventLog, name: str
) -> None:
    hub_pid = stack.child_pid("hub")
    async with (
        aiohttp.ClientSession() as http,
        AudioClient.connect(
            http, stack.url("/api/audio"), hello={"mode": "push_to_talk"}
        ) as client,
    ):
        end = await _push_to_talk(client, COMMAND, during=_kill(stack, name))
        error = await _error_from(events, name)
        assert error["message"]
        assert error["turn_id"] == end["turn_id"]
        await _hub_is_the_same_process(stack, hub_pid)

        back_at = await _back(stack, name)
        before = len(events.events)
        end = await _push_to_talk(client, COMMAND)
        stack.recovery_s[name] = round(time.monotonic() - back_at, 2)
    turn_events = [
        e for e in events.events[before:] if e["data"].get("turn_id") in (None, end["turn_id"])
    ]
    assert not [e for e in turn_events if e["event"] == "ERROR"], turn_events
    names = [e["event"] for e in turn_events]
    assert "SPEECH_RECOGNIZED" in names
    assert "SPEAKER_IDENTIFIED" in names
    assert not client.frames("error", turn_id=end["turn_id"])


async def test_killing_tts_while_kiwi_speaks(stack: Stack, events: EventLog) -> None:
    hub_pid = stack.child_pid("hub")
    # Claude's answer stops after its first sentence until released: Kiwi is speaking it when
    # the TTS service dies, and the next sentences find no TTS.
    stack.claude.hold_after_tokens = 5  # "Hello from the fake Claude."
    try:
        async with (
            aiohttp.ClientSession() as http,
            AudioClient.connect(http, stack.url("/api/audio"), hello={}) as client,
        ):
            await client.send({"type": "text_input", "text": "tell me about the weather"})
            await client.wait(lambda r: r.audio is not None, TURN_LIMIT_S)  # Kiwi speaks
            await _kill(stack, "tts")
            stack.claude.release()
            end = await client.wait_frame("end", TURN_LIMIT_S)
            error = await _error_from(events, "tts")
            assert error["turn_id"] == end["turn_id"]
            assert client.frames("error", turn_id=end["turn_id"])
            await _hub_is_the_same_process(stack, hub_pid)

            stack.claude.hold_after_tokens = None
            back_at = await _back(stack, "tts")
            audio_before = client.audio_bytes()
            ends = len(client.frames("end"))
            await client.send({"type": "text_input", "text": "and the day after?"})
            await client.wait(lambda _r: len(client.frames("end")) > ends, TURN_LIMIT_S)
            last = client.frames("end")[-1]
            stack.recovery_s["tts"] = round(time.monotonic() - back_at, 2)
    finally:
        stack.claude.hold_after_tokens = None
        stack.claude.release()
    assert last["interrupted"] is False
    assert not client.frames("error", turn_id=last["turn_id"])
    assert client.audio_bytes() > audio_before, "the next answer was spoken"


async def test_killing_wake_while_the_microphone_streams(stack: Stack, events: EventLog) -> None:
    hub_pid = stack.child_pid("hub")
    async with (
        aiohttp.ClientSession() as http,
        AudioClient.connect(http, stack.url("/api/audio")) as client,
    ):
        # Kiwi's plain protocol: binary PCM only, continuous wake-word listening.
        streaming = asyncio.create_task(_stream_silence(client))
        try:
            await asyncio.sleep(0.5)
            await _kill(stack, "wake")
            error = await _error_from(events, "wake")
            assert error["message"]
            await _hub_is_the_same_process(stack, hub_pid)
            back_at = await _back(stack, "wake")
        finally:
            streaming.cancel()
        # The next utterance with the wake word goes through, whenever the hub reconnected.
        utterance = espeak_pcm("hey jarvis") + COMMAND
        deadline = time.monotonic() + TURN_LIMIT_S
        while not events.of("WAKE_WORD_DETECTED"):
            assert time.monotonic() < deadline, "the wake word was never heard again"
            await client.send_audio(utterance, pace_s=0.01)
            await client.send_audio(SILENCE * 10, pace_s=0.01)
        await events.wait("TURN_METRICS", wait_s=TURN_LIMIT_S)
        stack.recovery_s["wake"] = round(time.monotonic() - back_at, 2)


async def _stream_silence(client: AudioClient) -> None:
    while True:
        await client.send_audio(SILENCE)
        await asyncio.sleep(0.1)
