"""Home Assistant's Wyoming integration against Kiwi's combined endpoint, as the add-on runs it.

The add-on tells Home Assistant about one Wyoming address (Supervisor discovery keeps one message
per service name), so that address must give HA speech-to-text, text-to-speech and wake word.
Here the processes are started the way the add-on's s6 services start them
(`kiwi run-service NAME --options options.json`, from .venv-addon/bin), HA discovers the combined
endpoint with the add-on's discovery payload, and audio goes through all three entities.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from homeassistant.components import stt, tts, wake_word
from homeassistant.components.wyoming import DOMAIN
from homeassistant.config_entries import SOURCE_HASSIO, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.ha.conftest import sockets_allowed
from tests.support.cache import REPO_ROOT
from tests.support.offline_models import PIPER_VOICE_NAME, WHISPER_MODEL_NAME
from tests.support.ports import free_ports
from tests.support.speech import espeak_pcm
from tests.support.waiting import until_sync
from tests.support.wyoming_process import ADDON_BIN, READY_LINE

pytestmark = pytest.mark.timeout(180)

PROCESSES = ("stt", "tts", "wake", "combined")
PORT_VARIABLES = {
    "stt": "KIWI_STT_PORT",
    "tts": "KIWI_TTS_PORT",
    "wake": "KIWI_WAKE_PORT",
    "combined": "KIWI_WYOMING_PORT",
}
START_LIMIT_S = 120.0
CHUNK_BYTES = 2048  # 1024 samples, what HA's pipeline hands its wake word and STT entities


@dataclass
class KiwiAddon:
    """The add-on's Wyoming processes, each started by `kiwi run-service`."""

    ports: dict[str, int]
    processes: dict[str, subprocess.Popen[bytes]]
    logs: Path

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    @property
    def discovery_payload(self) -> dict[str, str]:
        """What the add-on sends as `wyoming` discovery (with 127.0.0.1 for its hostname)."""
        return {"uri": f"tcp://127.0.0.1:{self.ports['combined']}"}


@pytest.fixture(scope="module")
def kiwi_addon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KiwiAddon]:
    root = tmp_path_factory.mktemp("kiwi-addon")
    data_dir = root / "data"
    subprocess.run(
        [str(ADDON_BIN / "python"), "-m", "tests.support.offline_models", str(data_dir / "models")],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    options = root / "options.json"
    options.write_text(
        json.dumps(
            {"stt_model": WHISPER_MODEL_NAME, "tts_voice": PIPER_VOICE_NAME, "language": "en"}
        ),
        encoding="utf-8",
    )
    with sockets_allowed():
        ports = dict(zip(PROCESSES, free_ports(len(PROCESSES)), strict=True))
    env = {key: value for key, value in os.environ.items() if not key.startswith("KIWI_")}
    env |= {PORT_VARIABLES[name]: str(port) for name, port in ports.items()}
    env |= {
        "KIWI_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "KIWI_PIPER_VOICES_URL": "http://127.0.0.1:9/voices",
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    addon = KiwiAddon(ports, processes, root)
    try:
        for name in PROCESSES:
            with (root / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    [str(ADDON_BIN / "kiwi"), "run-service", name, "--options", str(options)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=REPO_ROOT,
                    start_new_session=True,
                )
        _wait_until_ready(addon)
        yield addon
    finally:
        for process in processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_until_ready(addon: KiwiAddon) -> None:
    """Every process logs "Ready on tcp://" once it listens (read from its log: no socket)."""
    waiting = set(PROCESSES)

    def all_ready() -> bool:
        for name in list(waiting):
            if addon.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited:\n{addon.log(name)}")
            if READY_LINE in addon.log(name):
                waiting.discard(name)
        return not waiting

    until_sync(all_ready, lambda: f"ready: {waiting}", timeout_s=START_LIMIT_S, every_s=0.1)


def _entities(hass: HomeAssistant, entry_id: str) -> dict[str, str]:
    """The entry's entities by domain."""
    entries = er.async_entries_for_config_entry(er.async_get(hass), entry_id)
    return {entity.domain: entity.entity_id for entity in entries}


async def _setup(hass: HomeAssistant) -> None:
    # wyoming depends on assist_pipeline → conversation, which needs HA core's integration.
    assert await async_setup_component(hass, "homeassistant", {})


async def test_addon_discovery_sets_up_stt_tts_and_wake_word(
    hass: HomeAssistant, socket_enabled: None, kiwi_addon: KiwiAddon
) -> None:
    await _setup(hass)
    discovery = HassioServiceInfo(
        config=kiwi_addon.discovery_payload, name="Kiwi", slug="kiwi", uuid="kiwi-addon-uuid"
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=discovery
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["title"] == "Kiwi"
    assert result["data"] == {"host": "127.0.0.1", "port": kiwi_addon.ports["combined"]}
    await hass.async_block_till_done()

    entry = result["result"]
    assert entry.state is ConfigEntryState.LOADED
    assert set(_entities(hass, entry.entry_id)) == {"stt", "tts", "wake_word"}


async def _pcm_chunks(pcm: bytes, trailing_silence_s: float = 0.0) -> AsyncIterator[bytes]:
    audio = pcm + bytes(int(trailing_silence_s * 32000))
    for offset in range(0, len(audio), CHUNK_BYTES):
        yield audio[offset : offset + CHUNK_BYTES]
        await asyncio.sleep(0.002)  # a live microphone: the service can answer mid-stream


async def _timed_chunks(pcm: bytes) -> AsyncIterator[tuple[bytes, int]]:
    offset_ms = 0
    async for chunk in _pcm_chunks(pcm, trailing_silence_s=3.0):
        yield chunk, offset_ms
        offset_ms += len(chunk) // 32


async def test_speech_goes_through_each_entity_to_its_service(
    hass: HomeAssistant, socket_enabled: None, kiwi_addon: KiwiAddon
) -> None:
    await _setup(hass)
    entry = MockConfigEntry(
        domain=DOMAIN, data={"host": "127.0.0.1", "port": kiwi_addon.ports["combined"]}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entity_ids = _entities(hass, entry.entry_id)

    # Text to speech: `synthesize` is routed to kiwi-tts.
    tts_entity = hass.data[tts.DATA_COMPONENT].get_entity(entity_ids["tts"])
    assert tts_entity is not None
    extension, audio = await tts_entity.async_get_tts_audio(
        "Hello from Kiwi.", "en_US", {tts.ATTR_VOICE: PIPER_VOICE_NAME}
    )
    assert extension == "wav"
    assert audio[:4] == b"RIFF"
    assert len(audio) > 44 + 3200

    # Speech to text: `transcribe` and the audio after it are routed to kiwi-stt.
    stt_entity = stt.async_get_speech_to_text_entity(hass, entity_ids["stt"])
    assert stt_entity is not None
    metadata = stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )
    result = await stt_entity.internal_async_process_audio_stream(
        metadata, _pcm_chunks(espeak_pcm("turn on the kitchen light"))
    )
    assert result.result is stt.SpeechResultState.SUCCESS
    assert result.text  # a random-weight model's words mean nothing; that they arrive does

    # Wake word: `detect` and the streamed audio are routed to kiwi-wake.
    wake_entity = wake_word.async_get_wake_word_detection_entity(hass, entity_ids["wake_word"])
    assert wake_entity is not None
    assert "hey_jarvis" in {w.id for w in await wake_entity.get_supported_wake_words()}
    detection = await wake_entity.async_process_audio_stream(
        _timed_chunks(espeak_pcm("hey jarvis")), "hey_jarvis"
    )
    assert detection is not None
    assert detection.wake_word_id == "hey_jarvis"

    assert "Traceback" not in kiwi_addon.log("combined"), kiwi_addon.log("combined")
