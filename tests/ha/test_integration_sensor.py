"""Sensors of the hub and of speaker devices, against the real hub."""

from __future__ import annotations

import io
import wave

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from syrupy.assertion import SnapshotAssertion

from custom_components.kiwi.api import KiwiClient
from custom_components.kiwi.const import KIWI_EVENT
from tests.ha.kiwi_common import (
    browser_speaker,
    snapshot_kiwi_platform,
    type_to_kiwi,
    wait_for,
    wait_for_state,
)
from tests.support.hub_process import HubProcess
from tests.support.speech import SAMPLE_RATE, espeak_wav, wav_pcm

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def platforms() -> list[Platform]:
    """Only the sensor platform."""
    return [Platform.SENSOR]


@pytest.mark.fresh_hub
@pytest.mark.parametrize("hub_speakers", [["Alice"]])
@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_sensors(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every sensor, with one enrolled speaker on the hub."""
    await snapshot_kiwi_platform(hass, entity_registry, snapshot, init_integration.entry_id)


async def test_latency_sensors_are_disabled_by_default(
    hass: HomeAssistant, init_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """The per-turn latency figures are for tuning: registered, but off until enabled."""
    entries = er.async_entries_for_config_entry(entity_registry, init_integration.entry_id)
    disabled = {
        e.entity_id for e in entries if e.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    }
    assert disabled == {
        "sensor.kiwi_speech_to_text_time",
        "sensor.kiwi_language_model_first_token_time",
        "sensor.kiwi_time_to_first_audio",
    }
    assert hass.states.get("sensor.kiwi_time_to_first_audio") is None
    assert hass.states.get("sensor.kiwi_assistant_state") is not None


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_speaker_identified_updates_active_speaker_and_last_seen(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """The hub identifies a voice: active speaker and that speaker's last seen follow."""
    await wait_for_state(hass, "sensor.alice_last_seen", "unknown")

    clip = espeak_wav("Kiwi, what is the weather like today?", voice="en-us+m3")
    result = await hub_client.request(
        "POST", "/api/speakers/identify", wav=clip.read_bytes(), time_limit=60
    )
    assert result["name"] == "Alice"

    await wait_for(
        hass,
        lambda: hass.states.get("sensor.alice_last_seen").state != "unknown",
        "Alice's last seen did not change",
    )
    assert hass.states.get("sensor.kiwi_active_speaker").state == "Alice"


async def test_tts_moves_the_assistant_state(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    kiwi_hub: HubProcess,
    init_integration: MockConfigEntry,
) -> None:
    """Kiwi speaks a test phrase: the state goes to speaking and back to idle."""
    seen: list[str] = []
    hass.bus.async_listen(
        "state_changed",
        lambda event: (
            seen.append(event.data["new_state"].state)
            if event.data["entity_id"] == "sensor.kiwi_assistant_state"
            else None
        ),
    )
    async with browser_speaker(kiwi_hub, hub_client.session):
        await hub_client.tts_test("Hello there.")
        await wait_for_state(hass, "sensor.kiwi_assistant_state", "idle")
    assert "speaking" in seen


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_turn_metrics(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """A typed turn runs through the pipeline: its TURN_METRICS fill the metric sensors."""
    seen: list[str] = []
    hass.bus.async_listen(
        "state_changed",
        lambda event: (
            seen.append(event.data["new_state"].state)
            if event.data["entity_id"] == "sensor.kiwi_assistant_state"
            else None
        ),
    )
    frames = await type_to_kiwi(hub_client, "what time is it?")
    assert frames[-1]["type"] == "end"
    await wait_for(
        hass,
        lambda: (
            hass.states.get("sensor.kiwi_time_to_first_audio").state
            not in ("unknown", "unavailable")
        ),
        "no metrics",
    )
    assert float(hass.states.get("sensor.kiwi_time_to_first_audio").state) > 0
    # A typed turn has no speech to recognise: no STT time.
    assert hass.states.get("sensor.kiwi_speech_to_text_time").state == "unknown"
    await wait_for_state(hass, "sensor.kiwi_assistant_state", "idle")
    assert {"processing", "speaking"} <= set(seen)


def wake_word_then_command() -> bytes:
    """A WAV of espeak saying "hey jarvis", a pause (the clips' silence), "turn on the light"."""
    pcm = wav_pcm(espeak_wav("hey jarvis")) + wav_pcm(espeak_wav("turn on the light"))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
    return out.getvalue()


async def test_spoken_turn_sets_the_last_transcript(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """A spoken command through the hub's voice pipeline: the sensor shows what STT heard.

    The offline tiny Whisper model hears "kiwi" in any speech (tests/support/offline_models.py),
    so that, not the command, is the transcript.
    """
    assert hass.states.get("sensor.kiwi_last_transcript").state == "unknown"
    heard = async_capture_events(hass, KIWI_EVENT)
    await hub_client.request(
        "POST", "/api/audio/file", wav=wake_word_then_command(), time_limit=120
    )
    await wait_for_state(hass, "sensor.kiwi_last_transcript", "kiwi")
    # What the sensor shows is what the hub reported (kiwi-stt strips Whisper's leading space).
    [recognized] = [e.data["data"] for e in heard if e.data["type"] == "SPEECH_RECOGNIZED"]
    assert recognized["text"] == "kiwi"
