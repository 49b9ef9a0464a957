"""Every setting takes effect at once: proved on real processes.

kiwi-stt starts on the tiny random-weight Whisper (its transcripts are not words) with Kiwi's real
Whisper base on disk beside it; kiwi-tts has the tiny piper voice as an English voice and as a
German one; the fake Claude records what it is asked. Through the hub's API:

- `stt_model`: switching to base makes the very next transcript right (MODEL_LOADING and
  MODEL_LOADED on the way); a model that is not on disk (offline) fails the change with 409
  `model_missing` naming the setting, and base keeps transcribing;
- `stt_device`: a device the machine lacks (cuda) fails the same way, `auto` loads;
- `language`: Claude is told to answer in it, and speech uses a voice that speaks it; a language
  no voice speaks is answered with a notice (and an ERROR naming `tts_voice`);
- a soul's `speed`: the same sentence is half as long at speed 2;
- the seed's `tts_default_style` / `tts_qwen_backend`: accepted, answered under `ignored`;
- options (the environment) changed since the last start win over run-time changes, and the
  `soul` option too; unchanged ones do not.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import real_models
from tests.support.fake_anthropic import FakeAnthropic
from tests.support.hub_process import HubProcess, start_hub
from tests.support.offline_models import PIPER_VOICE_NAME, WHISPER_MODEL_NAME, piper_voice_path
from tests.support.pipeline_client import background_browser
from tests.support.speech import espeak_wav
from tests.support.waiting import until_async
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(180)

GERMAN_VOICE = "de_DE-kiwi_test-x_low"
FAST_SOUL = """---
id: quick
name: Quick
speed: 2.0
---
You are Kiwi, in a hurry.
"""
SLOW_SOUL = (
    FAST_SOUL.replace("id: quick", "id: slow").replace("Quick", "Slow").replace("2.0", "0.5")
)
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


@dataclass
class World:
    hub: HubProcess
    stt: ServiceProcess
    tts: ServiceProcess
    claude: FakeAnthropic
    session: aiohttp.ClientSession

    async def call(
        self, method: str, path: str, body: Any = None, **kwargs: Any
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.hub.base_url + path, json=body, headers=self.hub.auth_headers, **kwargs
        ) as answer:
            return answer.status, json.loads(await answer.text())

    async def transcript(self) -> str:
        """What the hub's pipeline heard in a spoken "turn on the kitchen light"."""
        clip = espeak_wav("turn on the kitchen light", "en-us+m3").read_bytes()
        async with self.session.post(
            self.hub.base_url + "/api/audio/file",
            params={"mode": "push_to_talk"},
            data=clip,
            headers={**self.hub.auth_headers, "Content-Type": "audio/wav"},
        ) as answer:
            body = await answer.json()
        assert answer.status == 200, body
        return str(body["turns"][0]["user_text"] or "")

    async def events_since(self, seq: int) -> list[dict[str, Any]]:
        status, body = await self.call("GET", f"/api/events/history?since={seq}")
        assert status == 200, body
        return list(body["events"])

    async def seq(self) -> int:
        return int((await self.call("GET", "/api/status"))[1]["event_seq"])

    async def spoken_seconds(self, text: str) -> float:
        """How long the hub's TTS_FINISHED says `text` took to say (POST /api/tts/test)."""
        seq = await self.seq()
        status, body = await self.call("POST", "/api/tts/test", {"text": text})
        assert status == 200, body

        async def finished() -> list[dict[str, Any]]:
            return [e for e in await self.events_since(seq) if e["event"] == "TTS_FINISHED"]

        [done] = await until_async(finished, "TTS_FINISHED")
        return float(done["data"]["audio_seconds"])


def voices_dir(folder: Path) -> Path:
    """The tiny voice as English (its own) and as German (same network, German config)."""
    voice = piper_voice_path()
    config = json.loads(voice.with_name(voice.name + ".json").read_text(encoding="utf-8"))
    (folder / f"{PIPER_VOICE_NAME}.onnx").symlink_to(voice)
    (folder / f"{PIPER_VOICE_NAME}.onnx.json").write_text(json.dumps(config), encoding="utf-8")
    german = {
        **config,
        "espeak": {"voice": "de"},
        "language": {**config["language"], "code": "de_DE"},
    }
    (folder / f"{GERMAN_VOICE}.onnx").symlink_to(voice)
    (folder / f"{GERMAN_VOICE}.onnx.json").write_text(json.dumps(german), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def processes(
    tmp_path_factory: pytest.TempPathFactory, offline_models_dir: Path
) -> Iterator[tuple[ServiceProcess, ServiceProcess, FakeAnthropic, Path]]:
    root = tmp_path_factory.mktemp("settings")
    stt = start_service(
        "kiwi-stt",
        [
            "--model", WHISPER_MODEL_NAME,
            "--data-dir", str(offline_models_dir / "whisper"),
            "--data-dir", str(real_models.whisper_dir()),
            "--download-dir", str(root / "downloads"),
        ],
        root / "kiwi-stt.log",
    )  # fmt: skip
    voices = root / "voices"
    voices.mkdir()
    tts = start_service(
        "kiwi-tts",
        ["--voice", PIPER_VOICE_NAME, "--data-dir", str(voices_dir(voices))],
        root / "kiwi-tts.log",
    )
    claude = FakeAnthropic()
    claude.start()
    yield stt, tts, claude, root
    claude.stop()
    tts.stop()
    stt.stop()


def hub_env(stt: ServiceProcess, claude: FakeAnthropic, **options: str) -> dict[str, str]:
    return {
        "KIWI_STT_URI": stt.uri,
        "KIWI_STT_MODEL": WHISPER_MODEL_NAME,  # the launcher passes kiwi-stt's model to both
        "KIWI_HOST_AUDIO": "off",
        "KIWI_HA_URL": "",
        "KIWI_HA_TOKEN": "",
        "SUPERVISOR_TOKEN": "",
        "ANTHROPIC_API_KEY": claude.api_key,
        "ANTHROPIC_BASE_URL": claude.url,
        **options,
    }


@pytest.fixture(scope="module")
def hub(
    processes: tuple[ServiceProcess, ServiceProcess, FakeAnthropic, Path],
) -> Iterator[HubProcess]:
    stt, tts, claude, root = processes
    souls = root / "hub" / "souls"
    souls.mkdir(parents=True)
    (souls / "quick.md").write_text(FAST_SOUL, encoding="utf-8")
    (souls / "slow.md").write_text(SLOW_SOUL, encoding="utf-8")
    process = start_hub(root / "hub", env=hub_env(stt, claude), speaker=False, tts_uri=tts.uri)
    yield process
    process.stop()


@pytest.fixture
async def world(
    hub: HubProcess, processes: tuple[ServiceProcess, ServiceProcess, FakeAnthropic, Path]
) -> AsyncIterator[World]:
    stt, tts, claude, _root = processes
    # A browser microphone stays connected so POST /api/tts/test has somewhere to play
    # (with nothing to play on it rightly answers 503 no_audio_output).
    with background_browser(hub.ws_url("/api/audio")):
        async with aiohttp.ClientSession() as session:
            yield World(hub, stt, tts, claude, session)


async def test_stt_model_switches_the_running_model(world: World) -> None:
    assert "kitchen" not in (await world.transcript()).lower()  # random weights: no words
    seq = await world.seq()

    status, body = await world.call("PATCH", "/api/config", {"stt_model": "base"})

    assert (status, body["updated"]) == (200, {"stt_model": "base"})
    kinds = [(e["event"], e["data"].get("stage")) for e in await world.events_since(seq)]
    assert ("MODEL_LOADING", "loading") in kinds
    assert ("MODEL_LOADED", None) in kinds
    assert "kitchen light" in (await world.transcript()).lower()
    assert (await world.call("GET", "/api/config"))[1]["stt_model"] == "base"


async def test_a_model_that_is_not_on_disk_fails_cleanly(world: World) -> None:
    """Offline, `small` cannot be had: the change fails with a clear error and nothing
    changes; the running model goes on."""
    before = (await world.call("GET", "/api/config"))[1]["stt_model"]
    status, body = await world.call("PATCH", "/api/config", {"stt_model": "small"})
    assert status == 409, body
    assert (body["error"]["code"], body["error"]["field"]) == ("model_missing", "stt_model")
    assert "stt_model" in body["error"]["message"]
    assert f"keeps using {before!r}" in body["error"]["message"]
    assert (await world.call("GET", "/api/config"))[1]["stt_model"] == before
    if before == "base":
        assert "kitchen light" in (await world.transcript()).lower()


async def test_stt_device_reloads_on_the_device(world: World) -> None:
    """This machine has no CUDA: `cuda` fails cleanly (the device was really tried); `auto`
    loads (on the CPU)."""
    status, body = await world.call("PATCH", "/api/config", {"stt_device": "cuda"})
    assert status == 409, body
    assert (body["error"]["code"], body["error"]["field"]) == ("engine_failed", "stt_device")
    assert (await world.call("GET", "/api/config"))[1]["stt_device"] == "cpu"
    seq = await world.seq()
    status, body = await world.call("PATCH", "/api/config", {"stt_device": "auto"})
    assert (status, body["updated"]) == (200, {"stt_device": "auto"})
    loaded = [e for e in await world.events_since(seq) if e["event"] == "MODEL_LOADED"]
    assert loaded
    assert loaded[0]["data"]["device"] == "auto"
    assert (await world.call("PATCH", "/api/config", {"stt_device": None}))[0] == 200


async def test_language_reaches_claude_and_picks_a_voice(world: World) -> None:
    status, body = await world.call("POST", "/api/language", {"language": "de"})
    assert (status, body) == (200, {"language": "de"})  # a German voice is installed: no notice
    try:
        status, answer = await world.call("POST", "/api/conversation", {"text": "Wie spät ist es?"})
        assert status == 200, answer
        assert "answer in German" in world.claude.last_request()["system"]

        seq = await world.seq()
        await world.spoken_seconds("Guten Tag.")
        [started] = [e for e in await world.events_since(seq) if e["event"] == "TTS_STARTED"]
        assert started["data"]["voice"] is None  # no voice chosen: kiwi-tts picks by language
        # The configured voice does not speak German: the German one speaks instead.
        await world.call("PATCH", "/api/config", {"tts_voice": PIPER_VOICE_NAME})
        seq = await world.seq()
        await world.spoken_seconds("Guten Tag.")
        [started] = [e for e in await world.events_since(seq) if e["event"] == "TTS_STARTED"]
        assert started["data"]["voice"] == GERMAN_VOICE
    finally:
        await world.call("PATCH", "/api/config", {"language": None, "tts_voice": None})


async def test_a_language_no_voice_speaks_is_said(world: World) -> None:
    seq = await world.seq()
    status, body = await world.call("POST", "/api/language", {"language": "fr"})
    try:
        assert status == 200
        [notice] = body["notices"]
        assert (notice["field"], notice["code"]) == ("language", "no_voice_for_language")
        assert "French" in notice["message"]
        [error] = [e for e in await world.events_since(seq) if e["event"] == "ERROR"]
        assert (error["data"]["code"], error["data"]["setting"]) == (
            "no_voice_for_language",
            "tts_voice",
        )
        # Kiwi still speaks (with the voice it has) and Claude answers in French.
        assert await world.spoken_seconds("Bonjour.") > 0
        await world.call("POST", "/api/conversation", {"text": "Bonjour"})
        assert "answer in French" in world.claude.last_request()["system"]
    finally:
        await world.call("PATCH", "/api/config", {"language": None})


async def test_a_souls_speed_is_the_voices_speed(world: World) -> None:
    try:
        assert (await world.call("POST", "/api/soul", {"soul": "slow"}))[0] == 200
        slow = await world.spoken_seconds(SENTENCE)
        assert (await world.call("POST", "/api/soul", {"soul": "quick"}))[0] == 200
        quick = await world.spoken_seconds(SENTENCE)
    finally:
        await world.call("POST", "/api/soul", {"soul": "default"})
    # piper's length scale is 1/speed: 0.5 against 2.0 is four times as long (silences aside).
    assert quick < slow / 2.5, (quick, slow)


async def test_contract_fields_that_are_not_settings_are_ignored(world: World) -> None:
    patch = {"tts_default_style": "cheerful", "tts_qwen_backend": "local", "llm_model": "x-1"}
    status, body = await world.call("PATCH", "/api/config", patch)
    try:
        assert status == 200
        assert body["updated"] == {"llm_model": "x-1"}
        assert set(body["ignored"]) == {"tts_default_style", "tts_qwen_backend"}
        config = (await world.call("GET", "/api/config"))[1]
        assert "tts_default_style" not in config
        assert config["tts_qwen_backend"] == "none"
        await world.call("POST", "/api/conversation", {"text": "hello"})
        assert world.claude.last_request()["model"] == "x-1"  # llm_model: at once
    finally:
        await world.call("PATCH", "/api/config", {"llm_model": None})


async def test_a_changed_option_wins_over_a_run_time_change(
    processes: tuple[ServiceProcess, ServiceProcess, FakeAnthropic, Path],
    tmp_path: Path,
) -> None:
    """A run-time change lasts across restarts with the same options; an option changed since
    the last start replaces it (settings and the soul alike)."""
    stt, tts, claude, _root = processes
    data = tmp_path / "hub"

    async def config_and_soul(hub: HubProcess) -> tuple[str, str]:
        async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
            async with session.get(hub.base_url + "/api/config") as answer:
                language = (await answer.json())["language"]
            async with session.get(hub.base_url + "/api/soul/current") as answer:
                soul = (await answer.json())["id"]
        return language, soul

    def run(**options: str) -> HubProcess:
        return start_hub(data, env=hub_env(stt, claude, **options), speaker=False, tts_uri=tts.uri)

    hub = run(KIWI_LANGUAGE="en", KIWI_SOUL="default")
    async with aiohttp.ClientSession(headers=hub.auth_headers) as session:
        await session.post(hub.base_url + "/api/language", json={"language": "de"})
        await session.post(hub.base_url + "/api/soul", json={"soul": "butler"})
    hub.stop()

    hub = run(KIWI_LANGUAGE="en", KIWI_SOUL="default")  # same options: run-time changes stay
    assert await config_and_soul(hub) == ("de", "butler")
    hub.stop()

    hub = run(KIWI_LANGUAGE="it", KIWI_SOUL="comedian")  # both options edited: they win
    try:
        assert await config_and_soul(hub) == ("it", "comedian")
    finally:
        hub.stop()
