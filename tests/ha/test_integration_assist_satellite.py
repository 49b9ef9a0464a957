"""Kiwi's own microphones as Home Assistant assist satellites, with a real audio path.

A test client speaks the browser-microphone protocol of /api/audio (docs/web-microphone.md) and
names its room in its hello: the hub makes it the satellite `room:Kitchen`, the integration an
`assist_satellite` entity. Home Assistant's own assist_satellite actions run against it: the
hub speaks announcements and questions into that socket (kiwi-tts), listens on it, and kiwi-stt
(Whisper base, the real model) transcribes what the client says (espeak-ng). Home Assistant's
pipeline is the one a Kiwi user has: Kiwi's conversation agent, TTS through HA's Wyoming
integration in front of kiwi-tts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from homeassistant.components import media_source, tts
from homeassistant.components.assist_pipeline.pipeline import (
    KEY_ASSIST_PIPELINE,
    async_create_default_pipeline,
    async_update_pipeline,
)
from homeassistant.components.assist_satellite import DOMAIN as SATELLITE_DOMAIN
from homeassistant.components.assist_satellite.const import DATA_COMPONENT
from homeassistant.components.tts.media_source import parse_media_source_id
from homeassistant.components.wyoming import DOMAIN as WYOMING
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
    mock_restore_cache,
)

from custom_components.kiwi.const import DOMAIN
from tests.ha.conftest import sockets_allowed
from tests.ha.kiwi_common import (
    WyomingServices,
    entry_for,
    hub_client_for,
    setup_entry,
    wait_for,
    wait_for_state,
)
from tests.support import real_models
from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import AudioClient
from tests.support.speech import espeak_pcm
from tests.support.waiting import until_async
from tests.support.wyoming_process import ServiceProcess, start_service

pytestmark = pytest.mark.timeout(240)
KITCHEN = "assist_satellite.kitchen"
SILENCE = b"\x00\x00" * 16000  # one second: the pause that ends an utterance


@pytest.fixture(scope="module")
def real_stt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """kiwi-stt on Whisper base: what the user says must come back as words."""
    log = tmp_path_factory.mktemp("real-stt") / "kiwi-stt.log"
    args = ["--model", real_models.WHISPER_MODEL, "--data-dir", str(real_models.whisper_dir())]
    with sockets_allowed():
        service = start_service("kiwi-stt", args, log)
    yield service
    service.stop()


async def _wyoming_entity(hass: HomeAssistant, port: int, platform: str) -> str:
    entry = MockConfigEntry(domain=WYOMING, data={"host": "127.0.0.1", "port": port})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entities = er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
    return next(e.entity_id for e in entities if e.domain == platform)


@pytest.fixture
async def kiwi(
    hass: HomeAssistant,
    start_kiwi_hub: Any,
    kiwi_services: WyomingServices,
    real_stt: ServiceProcess,
) -> AsyncIterator[HubProcess]:
    """A hub (real STT) set up in Home Assistant, and a preferred pipeline whose agent is Kiwi."""
    hub: HubProcess = start_kiwi_hub(
        tts_uri=kiwi_services.tts.uri,
        args=["--stt-uri", real_stt.uri, "--wake-uri", kiwi_services.wake.uri],
    )
    # Announcements resolve a URL of Home Assistant's TTS: it needs to know its own address.
    await async_process_ha_core_config(hass, {"internal_url": "http://127.0.0.1:8123"})
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "media_source", {})  # what media players resolve
    tts_entity = await _wyoming_entity(hass, kiwi_services.tts.port, "tts")
    stt_entity = await _wyoming_entity(hass, real_stt.port, "stt")
    entry = await setup_entry(hass, entry_for(hub))
    pipeline = await async_create_default_pipeline(
        hass, stt_engine_id=stt_entity, tts_engine_id=tts_entity, pipeline_name="Kiwi"
    )
    assert pipeline is not None
    await async_update_pipeline(hass, pipeline, conversation_engine="conversation.kiwi")
    hass.data[KEY_ASSIST_PIPELINE].pipeline_store.async_set_preferred_item(pipeline.id)
    yield hub
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _states(hass: HomeAssistant, entity_id: str) -> list[str]:
    seen: list[str] = []

    def record(event: Event[EventStateChangedData]) -> None:
        if event.data["entity_id"] == entity_id and event.data["new_state"] is not None:
            seen.append(event.data["new_state"].state)

    hass.bus.async_listen("state_changed", record)
    return seen


async def _say(client: AudioClient, text: str) -> None:
    """The user speaks once Kiwi listens on this microphone."""
    await client.wait_frame("listening", wait_s=60, trigger="conversation")
    await client.send_audio(espeak_pcm(text) + SILENCE)


async def test_a_named_microphone_is_a_satellite_whose_state_follows_its_turns(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    async with AudioClient.connect(
        hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
    ) as kitchen:
        await wait_for(hass, lambda: hass.states.get(KITCHEN) is not None, "no satellite")
        await wait_for_state(hass, KITCHEN, "idle")
        registered = er.async_get(hass).async_get(KITCHEN)
        assert registered is not None
        assert registered.unique_id.endswith("_satellite_room:Kitchen")
        # The wake word is the hub's, shared by every microphone; it is not set per satellite.
        entity = hass.data[DATA_COMPONENT].get_entity(KITCHEN)
        assert entity is not None
        config = entity.async_get_configuration()
        wake_word = (await hub_client_for(kiwi, hub_session).config()).raw["wake_word"]
        assert config.active_wake_words == [wake_word]
        assert [w.id for w in config.available_wake_words] == [wake_word]
        with pytest.raises(HomeAssistantError) as refused:
            await entity.async_set_configuration(config)
        assert refused.value.translation_key == "satellite_config"
        seen = _states(hass, KITCHEN)
        # A typed turn on the kitchen microphone: Kiwi works on it, answers, is done.
        await kitchen.send({"type": "text_input", "text": "tell me a joke"})
        await kitchen.wait_frame("end", wait_s=60)
        await wait_for_state(hass, KITCHEN, "idle")
        assert "processing" in seen
        assert "responding" in seen
    # The tab closed: the satellite stays, unavailable until the room connects again.
    await wait_for_state(hass, KITCHEN, STATE_UNAVAILABLE)


async def test_announce_speaks_on_that_satellite_only(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    async with (
        AudioClient.connect(
            hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
        ) as kitchen,
        AudioClient.connect(
            hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Office"}
        ) as office,
    ):
        await wait_for(hass, lambda: hass.states.get(KITCHEN) is not None, "no satellite")
        seen = _states(hass, KITCHEN)
        await hass.services.async_call(
            SATELLITE_DOMAIN,
            "announce",
            {"entity_id": KITCHEN, "message": "Dinner is ready.", "preannounce": False},
            blocking=True,
        )
        assert kitchen.frames("audio_start")
        assert kitchen.audio_bytes() > 16000  # half a second and more of Kiwi's voice
        assert office.audio_bytes() == 0
        assert seen[0] == "responding"
        # The hub says the turn is over in its own STATE_CHANGED, which may follow the answer.
        await wait_for_state(hass, KITCHEN, "idle")
        assert seen[-1] == "idle"


async def test_ask_question_returns_the_matched_answer(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    async with AudioClient.connect(
        hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
    ) as kitchen:
        await wait_for(hass, lambda: hass.states.get(KITCHEN) is not None, "no satellite")
        seen = _states(hass, KITCHEN)
        user = asyncio.create_task(_say(kitchen, "Coffee, please."))
        answer = await hass.services.async_call(
            SATELLITE_DOMAIN,
            "ask_question",
            {
                "entity_id": KITCHEN,
                "question": "Would you like tea or coffee?",
                "preannounce": False,
                "answers": [
                    {"id": "tea", "sentences": ["tea [please]"]},
                    {"id": "coffee", "sentences": ["coffee [please]"]},
                ],
            },
            blocking=True,
            return_response=True,
        )
        await user
    assert answer is not None
    assert answer["id"] == "coffee", answer
    assert "coffee" in str(answer["sentence"]).lower()
    assert "listening" in seen  # the satellite showed it was waiting for the answer
    assert seen[-1] == "idle"
    # The answer was only an answer: Kiwi did not run it as a request of its own.
    assert kitchen.frames("user_text")[-1]["text"] == answer["sentence"]
    assert not [f for f in kitchen.frames("end") if f["route"] not in ("none", "announcement")]


async def test_start_conversation_listens_and_kiwi_answers(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    async with AudioClient.connect(
        hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
    ) as kitchen:
        await wait_for(hass, lambda: hass.states.get(KITCHEN) is not None, "no satellite")
        user = asyncio.create_task(_say(kitchen, "Turn on the kitchen light."))
        await hass.services.async_call(
            SATELLITE_DOMAIN,
            "start_conversation",
            {"entity_id": KITCHEN, "start_message": "What can I do?", "preannounce": False},
            blocking=True,
        )
        await user
        listening = kitchen.frames("listening")[-1]
        heard = await kitchen.wait_frame("user_text", wait_s=60, turn_id=listening["turn_id"])
        end = await kitchen.wait_frame("end", wait_s=60, turn_id=listening["turn_id"])
    assert "kitchen light" in heard["text"].lower()
    assert end["route"] != "none"  # a turn of Kiwi's: it answered


async def test_without_a_message_an_announcement_is_refused(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    async with AudioClient.connect(
        hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
    ):
        await wait_for(hass, lambda: hass.states.get(KITCHEN) is not None, "no satellite")
        with pytest.raises(HomeAssistantError) as raised:
            await hass.services.async_call(
                SATELLITE_DOMAIN,
                "announce",
                {"entity_id": KITCHEN, "media_id": "http://127.0.0.1:9/chime.mp3"},
                blocking=True,
            )
    assert getattr(raised.value, "translation_key", None) == "satellite_needs_message"


# ---- replies where the user is -------------------------------------------------------------

LIVING_ROOM = "media_player.living_room"
KITCHEN_REPLIES = "select.kitchen_replies_on"


def _said(media_content_id: str) -> str:
    """The text a TTS media source id says."""
    parsed = parse_media_source_id(media_content_id)
    assert "message" in parsed, media_content_id
    return str(parsed["message"])


async def _tts_audio(hass: HomeAssistant, media_content_id: str) -> bytes:
    """What Home Assistant's TTS (Wyoming -> kiwi-tts) makes of a media source id: resolvable
    as a media player would, and audio from the engine and voice it names (as WAV: this
    machine has no ffmpeg to make the MP3 a media player gets)."""
    media = await media_source.async_resolve_media(hass, media_content_id, None)
    assert media.url.startswith("/api/tts_proxy/"), media.url
    parsed = parse_media_source_id(media_content_id)
    assert "message" in parsed
    kwargs = parsed["options"]
    stream = tts.async_create_stream(
        hass,
        kwargs["engine"],
        kwargs["language"],
        {**(kwargs["options"] or {}), tts.ATTR_PREFERRED_FORMAT: "wav"},
    )
    stream.async_set_message(parsed["message"])
    return b"".join([chunk async for chunk in stream.async_stream_result()])


async def test_kiwi_speak_on_a_media_player(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    """kiwi.speak with media players: Home Assistant's TTS says it there, not Kiwi's speakers."""
    plays = async_mock_service(hass, "media_player", "play_media")
    entry_id = hass.config_entries.async_entries(DOMAIN)[0].entry_id
    async with AudioClient.connect(
        hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
    ) as kitchen:
        answer = await hass.services.async_call(
            DOMAIN,
            "speak",
            {"config_entry_id": entry_id, "text": "The laundry is done.",
             "media_player_entity_id": [LIVING_ROOM]},
            blocking=True,
            return_response=True,
        )  # fmt: skip
        assert kitchen.audio_bytes() == 0
    assert answer == {"played_on": [LIVING_ROOM]}
    [play] = plays
    assert play.data["entity_id"] == [LIVING_ROOM]
    assert play.data["announce"] is True
    assert play.data["media_content_id"].startswith("media-source://tts/")
    assert _said(play.data["media_content_id"]) == "The laundry is done."
    assert len(await _tts_audio(hass, play.data["media_content_id"])) > 8000


async def test_a_satellites_replies_play_on_the_chosen_media_player(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    hass.states.async_set(LIVING_ROOM, "idle")
    plays = async_mock_service(hass, "media_player", "play_media")
    async with AudioClient.connect(
        hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
    ) as kitchen:
        await wait_for(hass, lambda: hass.states.get(KITCHEN_REPLIES) is not None, "no select")
        assert hass.states.get(KITCHEN_REPLIES).state == "satellite"
        assert LIVING_ROOM in hass.states.get(KITCHEN_REPLIES).attributes["options"]
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": KITCHEN_REPLIES, "option": LIVING_ROOM},
            blocking=True,
        )
        # A turn on the kitchen microphone: its reply is not played in the kitchen...
        await kitchen.send({"type": "text_input", "text": "tell me a joke"})
        end = await kitchen.wait_frame("end", wait_s=60)
        await wait_for(hass, lambda: len(plays) == 1, "the reply was not played")
        assert kitchen.audio_bytes() == 0
        # ... and an announcement on the satellite goes to the living room too.
        await hass.services.async_call(
            SATELLITE_DOMAIN,
            "announce",
            {"entity_id": KITCHEN, "message": "Dinner is ready.", "preannounce": False},
            blocking=True,
        )
        assert kitchen.audio_bytes() == 0
        # Back to the kitchen's own speaker.
        await hass.services.async_call(
            "select",
            "select_option",
            {"entity_id": KITCHEN_REPLIES, "option": "satellite"},
            blocking=True,
        )
        await kitchen.send({"type": "text_input", "text": "tell me another joke"})
        await kitchen.wait_frame("audio_start", wait_s=60)
    reply, announced = plays[0], plays[1]
    assert reply.data["entity_id"] == [LIVING_ROOM]
    assert end["text"]
    assert _said(reply.data["media_content_id"]) == end["text"]
    assert _said(announced.data["media_content_id"]) == "Dinner is ready."
    assert len(plays) == 2  # the last reply played in the kitchen, not the living room
    assert len(await _tts_audio(hass, reply.data["media_content_id"])) > 8000


async def test_the_replies_choice_survives_a_restart_of_home_assistant(
    hass: HomeAssistant, kiwi: HubProcess, hub_session: aiohttp.ClientSession
) -> None:
    """The select comes back with its last choice and tells the hub (which forgot it)."""
    mock_restore_cache(hass, [State(KITCHEN_REPLIES, LIVING_ROOM)])
    client = hub_client_for(kiwi, hub_session)
    async with AudioClient.connect(
        hub_session, kiwi.ws_url("/api/audio"), hello={"room": "Kitchen"}
    ):
        await wait_for(hass, lambda: hass.states.get(KITCHEN_REPLIES) is not None, "no select")
        assert hass.states.get(KITCHEN_REPLIES).state == LIVING_ROOM
        # The player is not there (yet): still offered, so the choice stays visible.
        assert LIVING_ROOM in hass.states.get(KITCHEN_REPLIES).attributes["options"]

        async def told() -> bool:
            listed = await client.satellites()
            return any(s.id == "room:Kitchen" for s in listed) and (
                (await client.request("GET", "/api/satellites"))["satellites"][0]["replies"]
                == "elsewhere"
            )

        await until_async(told, "the hub was not told where the kitchen replies")
