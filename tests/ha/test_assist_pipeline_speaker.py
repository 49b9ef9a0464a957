"""Done when (issue 15): an Assist pipeline run, HA's own `assist_pipeline`, with Kiwi's
services as its wake word and speech-to-text and Kiwi as its conversation agent.

Real parts: Kiwi's combined Wyoming endpoint (`python -m kiwi_voice.combined`, reporting to the
hub) in front of the session's kiwi-wake (openWakeWord), kiwi-speaker and kiwi-tts and a kiwi-stt
on Whisper base; a kiwi-hub whose Home Assistant is this harness's (HTTP on 127.0.0.1); HA's
Wyoming integration on the combined endpoint (its wake_word entity) and Kiwi's integration (its
speech-to-text entity and conversation agent), with Anna's profile linked to the person Anna.

1. Anna says "hey jarvis, turn on the kitchen light": the WAKE_WORD_DETECTED device trigger runs
   its automation, HA shows Anna as the speaker, and the light is turned on as Anna's HA user.
2. A voice nobody enrolled says "hey jarvis, unlock the front door": a guest's command, which
   waits for the owner's approval; declined, the door stays locked.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from homeassistant.components import automation, conversation, stt
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
    async_pipeline_from_audio_stream,
)
from homeassistant.components.assist_pipeline.pipeline import (
    async_get_pipeline,
    async_update_pipeline,
)
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import Context, Event, HomeAssistant, ServiceCall
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_capture_events
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.kiwi.const import CONF_SPEAKER_PERSONS, DOMAIN, KIWI_EVENT
from tests.ha.kiwi_common import (
    SPEAKER_VOICES,
    WyomingServices,
    enroll,
    entry_for,
    hub_client_for,
    setup_entry,
    start_home_hub,
)
from tests.support.hub_process import HubProcess
from tests.support.ports import free_port
from tests.support.speech import espeak_pcm
from tests.support.waiting import until_async
from tests.support.wyoming_process import ADDON_BIN, ServiceProcess

pytestmark = pytest.mark.timeout(300)

LIGHT, DOOR, DOOR_TRACE = "input_boolean.kitchen_light", "lock.front_door", "input_boolean.unlocked"
ANNA_VOICE, GUEST_VOICE = SPEAKER_VOICES[0], SPEAKER_VOICES[1]
CHUNK = 2048  # 1024 samples of 16 kHz 16-bit mono, what a satellite streams


@pytest.fixture
async def anna_user(hass: HomeAssistant) -> str:
    """The home: a kitchen light, a front door lock (sensitive), the person Anna with a user."""
    for component in ("homeassistant", "http", "api", "websocket_api", "config", "conversation"):
        assert await async_setup_component(hass, component, {})
    booleans = {"kitchen_light": {"name": "Kitchen light"}, "unlocked": {"name": "Unlocked"}}
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": booleans})
    assert await async_setup_component(hass, "lock", {"lock": [{
        "platform": "template", "name": "Front door", "unique_id": "front_door",
        "value_template": "{{ is_state('input_boolean.unlocked', 'off') }}",
        "lock": {"action": "input_boolean.turn_off", "target": {"entity_id": DOOR_TRACE}},
        "unlock": {"action": "input_boolean.turn_on", "target": {"entity_id": DOOR_TRACE}},
    }]})  # fmt: skip
    user = await hass.auth.async_create_user("Anna")
    assert await async_setup_component(
        hass, "person", {"person": [{"id": "anna", "name": "Anna", "user_id": user.id}]}
    )
    await hass.async_block_till_done()
    for exposed in (LIGHT, DOOR):
        async_expose_entity(hass, conversation.DOMAIN, exposed, True)
    return user.id


@pytest.fixture
async def home_hub(  # noqa: PLR0917 (fixtures)
    anna_user: str,
    hass_client: ClientSessionGenerator,
    hass_access_token: str,
    kiwi_services: WyomingServices,
    real_stt: ServiceProcess,
    tmp_path: Path,
    socket_enabled: None,
) -> Iterator[HubProcess]:
    """Guests' and unknown voices' commands wait for the owner (approved over the hub's API)."""
    hub = await start_home_hub(
        hass_client,
        hass_access_token,
        kiwi_services,
        real_stt,
        tmp_path / "hub",
        {
            "KIWI_UNKNOWN_SPEAKER_POLICY": "approve",
            "KIWI_GUEST_POLICY": "approve",
            "KIWI_APPROVALS_VIA_API": "true",
            "KIWI_TELEGRAM_BOT_TOKEN": "",
        },
    )
    yield hub
    hub.stop(stop_speaker=False)


@pytest.fixture
def combined(
    home_hub: HubProcess, kiwi_services: WyomingServices, real_stt: ServiceProcess
) -> Iterator[int]:
    """Kiwi's combined Wyoming endpoint, as the launcher starts it (with the hub's URL)."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(str(ADDON_BIN / "python"), "-m", "kiwi_voice.combined"),
            *("--uri", f"tcp://127.0.0.1:{port}"),
            *("--stt-uri", real_stt.uri),
            *("--tts-uri", kiwi_services.tts.uri),
            *("--wake-uri", kiwi_services.wake.uri),
            *("--speaker-uri", kiwi_services.speaker.uri),
            *("--hub-url", home_hub.base_url),
            *("--hub-token-file", str(home_hub.data_dir / "api_token")),
        ],
        start_new_session=True,
    )
    try:
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


async def wyoming_wake_entity(hass: HomeAssistant, port: int) -> str:
    """HA's Wyoming integration on the combined endpoint: its wake_word entity."""

    async def created() -> Any:
        result = await hass.config_entries.flow.async_init(
            "wyoming", context={"source": SOURCE_USER}, data={"host": "127.0.0.1", "port": port}
        )
        return result if result["type"] is FlowResultType.CREATE_ENTRY else None

    result = await until_async(created, "HA's Wyoming flow on the combined endpoint", timeout_s=30)
    await hass.async_block_till_done()
    entries = er.async_entries_for_config_entry(er.async_get(hass), result["result"].entry_id)
    [wake] = [e.entity_id for e in entries if e.domain == "wake_word"]
    return wake


def trimmed(pcm: bytes) -> bytes:
    """Speech without espeak's silence at both ends."""
    samples = array.array("h", pcm)
    loud = [i for i, sample in enumerate(samples) if abs(sample) > 300]
    return samples[loud[0] : loud[-1] + 1].tobytes() if loud else b""


def spoken(voice: str, command: str) -> bytes:
    """The wake word and the command in one breath (a 0.2 s pause), as people say it: a
    longer pause would end the command (HA's VAD) before it began."""
    pause = bytes(int(0.2 * 32000))
    return trimmed(espeak_pcm("hey jarvis", voice)) + pause + trimmed(espeak_pcm(command, voice))


async def satellite_audio(pcm: bytes) -> AsyncIterator[bytes]:
    """A satellite's microphone: silence, the words, more silence; in real time, as a
    microphone delivers it (the command must not stream past before the wake word is heard)."""
    audio = bytes(16000) + pcm + bytes(32000 * 3)
    for offset in range(0, len(audio), CHUNK):
        yield audio[offset : offset + CHUNK]
        await asyncio.sleep(CHUNK / 32000)


async def run_pipeline(hass: HomeAssistant, pipeline_id: str, pcm: bytes) -> list[PipelineEvent]:
    events: list[PipelineEvent] = []
    await async_pipeline_from_audio_stream(
        hass,
        context=Context(),
        event_callback=events.append,
        stt_metadata=stt.SpeechMetadata(
            language="",
            format=stt.AudioFormats.WAV,
            codec=stt.AudioCodecs.PCM,
            bit_rate=stt.AudioBitRates.BITRATE_16,
            sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
            channel=stt.AudioChannels.CHANNEL_MONO,
        ),
        stt_stream=satellite_audio(pcm),
        pipeline_id=pipeline_id,
        start_stage=PipelineStage.WAKE_WORD,
        end_stage=PipelineStage.INTENT,
    )
    return events


def of_type(events: list[PipelineEvent], kind: PipelineEventType) -> list[dict[str, Any]]:
    return [e.data or {} for e in events if e.type == kind]


async def test_an_assist_pipeline_run_through_kiwi(
    hass: HomeAssistant,
    anna_user: str,
    home_hub: HubProcess,
    combined: int,
    hub_session: aiohttp.ClientSession,
) -> None:
    client = hub_client_for(home_hub, hub_session)
    anna = await enroll(client, "Anna", ANNA_VOICE)
    entry = entry_for(home_hub)
    try:
        entry.add_to_hass(hass)
        hass.config_entries.async_update_entry(
            entry, options={CONF_SPEAKER_PERSONS: {anna: "person.anna"}}
        )
        await setup_entry(hass, entry)
        wake_entity = await wyoming_wake_entity(hass, combined)
        assert await async_setup_component(hass, "assist_pipeline", {})
        [kiwi_stt] = [
            e.entity_id
            for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
            if e.domain == "stt"
        ]
        pipeline = async_get_pipeline(hass)  # the preferred one, made when Assist is set up
        await async_update_pipeline(
            hass,
            pipeline,
            stt_engine=kiwi_stt,
            tts_engine=None,
            conversation_engine="conversation.kiwi",
            wake_word_entity=wake_entity,
            wake_word_id="hey_jarvis",
            stt_language="en",
            language="en",
        )
        pipeline = async_get_pipeline(hass, pipeline.id)

        # "When Kiwi hears its wake word", made in the UI: a device trigger on the hub device.
        hub_device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, entry.unique_id)})
        assert hub_device is not None
        woken: list[ServiceCall] = []
        hass.services.async_register("test", "woken", woken.append)
        assert await async_setup_component(hass, automation.DOMAIN, {automation.DOMAIN: {
            "triggers": {"trigger": "device", "domain": DOMAIN, "device_id": hub_device.id,
                         "type": "wake_word_detected"},
            "actions": {"action": "test.woken", "data": {"data": "{{ trigger.event.data.data }}"}},
        }})  # fmt: skip
        kiwi_events = async_capture_events(hass, KIWI_EVENT)
        calls: list[Event] = []
        hass.bus.async_listen("call_service", calls.append)

        # 1. Anna.
        events = await run_pipeline(
            hass, pipeline.id, spoken(ANNA_VOICE, "Turn on the kitchen light.")
        )
        assert of_type(events, PipelineEventType.WAKE_WORD_END)[0]["wake_word_output"]
        stt_ends = of_type(events, PipelineEventType.STT_END)
        assert len(stt_ends) == 1, [e.data for e in events[-3:]]
        [stt_end] = stt_ends
        assert "kitchen light" in stt_end["stt_output"]["text"].lower()
        assert of_type(events, PipelineEventType.INTENT_END), events
        await hass.async_block_till_done()

        async def wake_trigger_ran() -> list[ServiceCall]:
            await hass.async_block_till_done()
            return woken

        [wake_call] = await until_async(wake_trigger_ran, "the wake word device trigger")
        assert wake_call.data["data"]["text"] == "hey_jarvis"
        assert wake_call.data["data"]["session"].startswith("wyoming:")
        # HA shows who spoke: the hub's SPEAKER_IDENTIFIED, with the linked person.
        identified = [e.data["data"] for e in kiwi_events if e.data["type"] == "SPEAKER_IDENTIFIED"]
        assert (identified[-1]["id"], identified[-1]["name"]) == (anna, "Anna")
        assert identified[-1]["person"] == "person.anna"
        # ... and the command ran as Anna's Home Assistant user.
        [light] = [c for c in calls if c.data["domain"] == "input_boolean"]
        assert light.data["service"] == "turn_on"
        assert light.context.user_id == anna_user
        assert hass.states.get(LIGHT).state == "on"

        # 2. A guest: the sensitive command waits for the owner's approval.
        calls.clear()
        guest_run = asyncio.create_task(
            run_pipeline(hass, pipeline.id, spoken(GUEST_VOICE, "Unlock the front door."))
        )

        async def pending() -> list[dict[str, Any]]:
            if guest_run.done():  # it must wait for the owner: say what happened instead
                raise AssertionError([(e.type, e.data) for e in guest_run.result()])
            return list((await client.request("GET", "/api/approvals"))["approvals"])

        [request] = await until_async(pending, "the guest's approval request", timeout_s=120)
        assert "unlock the front door" in request["command"].lower()
        assert request["speaker"] == "Unknown"
        assert not guest_run.done()  # the Assist turn waits for the owner
        assert hass.states.get(DOOR).state == "locked"
        await client.request(
            "POST", f"/api/approvals/{request['request_id']}", json={"approved": False}
        )
        events = await asyncio.wait_for(guest_run, 60)
        [intent_end] = of_type(events, PipelineEventType.INTENT_END)
        speech = intent_end["intent_output"]["response"]["speech"]["plain"]["speech"]
        assert "not approved" in speech.lower() or "declined" in speech.lower()
        await hass.async_block_till_done()
        assert hass.states.get(DOOR).state == "locked"
        assert not [c for c in calls if c.data["domain"] in ("lock", "input_boolean")]
        assert len(woken) == 2  # the guest's wake word fired the trigger too
    finally:
        await client.delete_speaker(anna)
        await hass.config_entries.async_unload(entry.entry_id)
