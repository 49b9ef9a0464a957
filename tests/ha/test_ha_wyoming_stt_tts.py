"""Home Assistant's own `wyoming` integration against kiwi-stt and kiwi-tts running as processes.

The services are the add-on env's console scripts on the offline models; HA (this env, with
its wyoming 1.7.2) configures them like any Wyoming server, creates its STT and TTS entities,
and a speech round trip goes through those entities.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from homeassistant.components import stt, tts
from homeassistant.components.wyoming import DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.support.pipeline_stack import offline_models_dir, service_starters, start_services
from tests.support.ports import free_port
from tests.support.speech import espeak_wav, wav_pcm
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(120)

VOICE = "en_US-kiwi_test-x_low"


# Function scope: HA's harness blocks sockets outside `socket_enabled`, and picking a free
# port needs one. Each test starts only the service it talks to.
def _service(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    starters = service_starters(
        offline_models_dir(tmp_path_factory), tmp_path_factory.mktemp(name), stt_threads=1
    )
    service = start_services(starters, (name,))[name]
    yield service
    service.stop()


@pytest.fixture
def kiwi_stt(
    tmp_path_factory: pytest.TempPathFactory, socket_enabled: None
) -> Iterator[ServiceProcess]:
    yield from _service("stt", tmp_path_factory)


@pytest.fixture
def kiwi_tts(
    tmp_path_factory: pytest.TempPathFactory, socket_enabled: None
) -> Iterator[ServiceProcess]:
    yield from _service("tts", tmp_path_factory)


async def add_wyoming_entry(hass: HomeAssistant, port: int) -> MockConfigEntry:
    # wyoming depends on conversation, which needs HA core's exposed-entities store.
    assert await async_setup_component(hass, "homeassistant", {})
    entry = MockConfigEntry(domain=DOMAIN, data={"host": "127.0.0.1", "port": port})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def entity_id_of(hass: HomeAssistant, platform: str, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(platform, DOMAIN, unique_id)
    assert entity_id is not None, f"no {platform} entity {unique_id}"
    return entity_id


async def pcm_stream(pcm: bytes, chunk_bytes: int = 3200) -> AsyncIterator[bytes]:
    for offset in range(0, len(pcm), chunk_bytes):
        yield pcm[offset : offset + chunk_bytes]


async def test_stt_entity_transcribes_through_kiwi_stt(
    hass: HomeAssistant, kiwi_stt: ServiceProcess
) -> None:
    assert await async_setup_component(hass, "stt", {})
    entry = await add_wyoming_entry(hass, kiwi_stt.port)
    entity_id = entity_id_of(hass, "stt", f"{entry.entry_id}-stt")
    assert entity_id == "stt.kiwi_stt"
    entity = stt.async_get_speech_to_text_entity(hass, entity_id)
    assert entity is not None
    assert {"en", "de"} <= set(entity.supported_languages)

    metadata = stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )
    pcm = wav_pcm(espeak_wav("turn on the kitchen light"))
    result = await entity.internal_async_process_audio_stream(metadata, pcm_stream(pcm))
    assert result.result == stt.SpeechResultState.SUCCESS
    assert isinstance(result.text, str)
    assert result.text  # what the tiny model says means nothing; that it answers does
    assert "transcript (en)" in kiwi_stt.log()


def wav_frames(data: bytes) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getframerate(), wav.getsampwidth(), wav.getnchannels(), wav.getnframes()


async def test_tts_entity_speaks_through_kiwi_tts(
    hass: HomeAssistant, kiwi_tts: ServiceProcess
) -> None:
    assert await async_setup_component(hass, "tts", {})
    entry = await add_wyoming_entry(hass, kiwi_tts.port)
    entity_id = entity_id_of(hass, "tts", f"{entry.entry_id}-tts")
    assert entity_id == "tts.kiwi_tts"
    entity = hass.data[tts.DATA_COMPONENT].get_entity(entity_id)
    assert entity is not None
    assert entity.supported_languages == ["en_US"]
    assert entity.async_supports_streaming_input()
    assert [v.voice_id for v in entity.async_get_supported_voices("en_US")] == [VOICE]

    # The one-shot path: Wyoming `synthesize`.
    extension, data = await entity.async_get_tts_audio(
        "Hello from Kiwi. This is a second sentence.", "en_US", {tts.ATTR_VOICE: VOICE}
    )
    assert extension == "wav"
    rate, width, channels, frames = wav_frames(data)
    assert (rate, width, channels) == (16000, 2, 1)
    assert frames > 0

    # The streaming path: synthesize-start/chunk/stop, through HA's media source.
    media_source_id = tts.generate_media_source_id(
        hass,
        "Streaming from Kiwi. Sentence by sentence.",
        engine=entity_id,
        language="en_US",
        options={tts.ATTR_PREFERRED_FORMAT: "wav"},
        cache=False,  # HA's file cache lives in the shared testing config dir
    )
    extension, streamed = await tts.async_get_media_source_audio(hass, media_source_id)
    assert extension == "wav"
    # A streamed WAV header says 0 frames; the PCM after it is the audio.
    assert len(streamed) > 44 + 16000  # more than half a second of 16 kHz s16 audio
    assert streamed[:4] == b"RIFF"
    log = kiwi_tts.log()
    assert ": synthesize: 2 sentence(s)" in log
    assert ": text stream: 2 sentence(s)" in log


async def test_failures_reach_home_assistant_promptly(
    hass: HomeAssistant, tmp_path: Path, socket_enabled: None
) -> None:
    """A model that cannot be downloaded: HA's entities fail at once instead of hanging."""
    closed = f"http://127.0.0.1:{free_port()}"
    stt_service = start_service(
        "kiwi-stt",
        ["--data-dir", str(tmp_path / "whisper"), "--model", "tiny", "--download-url", closed],
        tmp_path / "stt.log",
    )
    tts_args = ["--data-dir", str(tmp_path / "piper"), "--voice", "en_US-lessac-medium"]
    tts_service = start_service(
        "kiwi-tts", [*tts_args, "--download-url", closed], tmp_path / "tts.log"
    )
    try:
        assert await async_setup_component(hass, "stt", {})
        assert await async_setup_component(hass, "tts", {})
        stt_entry = await add_wyoming_entry(hass, stt_service.port)
        tts_entry = await add_wyoming_entry(hass, tts_service.port)
        stt_entity = stt.async_get_speech_to_text_entity(
            hass, entity_id_of(hass, "stt", f"{stt_entry.entry_id}-stt")
        )
        tts_entity = hass.data[tts.DATA_COMPONENT].get_entity(
            entity_id_of(hass, "tts", f"{tts_entry.entry_id}-tts")
        )
        assert stt_entity is not None
        assert tts_entity is not None

        metadata = stt.SpeechMetadata(
            language="en",
            format=stt.AudioFormats.WAV,
            codec=stt.AudioCodecs.PCM,
            bit_rate=stt.AudioBitRates.BITRATE_16,
            sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
            channel=stt.AudioChannels.CHANNEL_MONO,
        )
        async with asyncio.timeout(20):
            result = await stt_entity.internal_async_process_audio_stream(
                metadata, pcm_stream(bytes(32000))
            )
            assert result.result == stt.SpeechResultState.ERROR
            assert await tts_entity.async_get_tts_audio("Hello.", "en_US", {}) == (None, None)
        assert "model_missing" in stt_service.log()
        assert "model_missing" in tts_service.log()
    finally:
        stt_service.stop()
        tts_service.stop()
