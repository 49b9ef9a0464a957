"""Home Assistant's own Wyoming integration (wyoming 1.7.2) against kiwi-wake as a real process.

HA's config flow asks the service for `info`, creates the entry and its wake_word entity; the
espeak clip then goes through that entity's `async_process_audio_stream`, exactly the path an
Assist pipeline takes. kiwi_voice cannot be imported here: the service is the add-on env's
`kiwi-wake` command, started by the stdlib-only helpers in tests.support.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from homeassistant.components import wake_word
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

from tests.support import offline_models
from tests.support.pipeline_stack import offline_models_dir, service_starters, start_services
from tests.support.speech import espeak_pcm
from tests.support.wyoming_process import ServiceProcess

pytestmark = pytest.mark.timeout(120)

CHUNK_SAMPLES = 1024  # what HA's pipeline hands a wake word entity at 16 kHz
BYTES_PER_MS = 32  # 16 kHz, 16-bit mono


@pytest.fixture
def kiwi_wake(
    socket_enabled: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    starters = service_starters(
        offline_models_dir(tmp_path_factory), tmp_path_factory.mktemp("wake"), wake_word=None
    )
    service = start_services(starters, ("wake",))["wake"]
    yield service
    assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log(), service.log()  # HA hangs up mid-stream: no harm


async def add_wyoming_entry(hass: HomeAssistant, port: int) -> wake_word.WakeWordDetectionEntity:
    """Run HA's Wyoming config flow for the service and return the wake_word entity it made."""
    # Wyoming depends on assist_pipeline -> conversation, which needs the core integration.
    assert await async_setup_component(hass, "homeassistant", {})
    result = await hass.config_entries.flow.async_init(
        "wyoming", context={"source": SOURCE_USER}, data={"host": "127.0.0.1", "port": port}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY, result
    assert result["title"] == "kiwi-wake"
    await hass.async_block_till_done()
    entries = er.async_entries_for_config_entry(er.async_get(hass), result["result"].entry_id)
    [entity_id] = [e.entity_id for e in entries if e.domain == wake_word.DOMAIN]
    entity = wake_word.async_get_wake_word_detection_entity(hass, entity_id)
    assert entity is not None
    return entity


async def live_audio(
    pcm: bytes, trailing_silence_s: float = 3.0
) -> AsyncIterator[tuple[bytes, int]]:
    """The clip as a microphone delivers it: chunk by chunk, followed by more (silent) audio.

    HA stops reading events as soon as the stream ends (a live microphone's stream does not
    end by itself), so the trailing silence and the short pauses let the service answer while
    audio still flows, faster than real time.
    """
    step = CHUNK_SAMPLES * 2
    audio = pcm + bytes(int(trailing_silence_s * 1000) * BYTES_PER_MS)
    for offset in range(0, len(audio), step):
        yield audio[offset : offset + step], offset // BYTES_PER_MS
        await asyncio.sleep(0.005)  # the pace of a live microphone (see above)


async def test_wyoming_integration_creates_the_wake_word_entity(
    hass: HomeAssistant, kiwi_wake: ServiceProcess
) -> None:
    entity = await add_wyoming_entry(hass, kiwi_wake.port)
    words = {w.id: w for w in await entity.get_supported_wake_words()}
    assert set(offline_models.OPENWAKEWORD_WAKE_WORDS) <= set(words)
    assert words["hey_jarvis"].name == words["hey_jarvis"].phrase == "hey jarvis"


async def test_detection_through_the_wake_word_entity(
    hass: HomeAssistant, kiwi_wake: ServiceProcess
) -> None:
    entity = await add_wyoming_entry(hass, kiwi_wake.port)
    clip = espeak_pcm("hey jarvis")
    result = await entity.async_process_audio_stream(live_audio(clip), "hey_jarvis")
    assert result is not None
    assert result.wake_word_id == "hey_jarvis"
    assert result.wake_word_phrase == "hey jarvis"
    assert result.timestamp is not None
    assert 1000 < result.timestamp <= len(clip) // BYTES_PER_MS  # after the 1 s of silence

    sentence = espeak_pcm("the weather is nice today and I would like to go for a walk")
    assert await entity.async_process_audio_stream(live_audio(sentence), "hey_jarvis") is None
