"""Seed 001 endpoint by endpoint and seed 000 event by event, against a real hub process with
the real kiwi-speaker and kiwi-tts behind it and a local server speaking Home Assistant's REST
API. Every response and every frame is checked against the OpenAPI document the hub serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import offline_models
from tests.support.hub_fake_ha import FakeHomeAssistant
from tests.support.hub_openapi import CheckedClient, OpenApiContract
from tests.support.hub_process import HubProcess, restart_hub, start_hub
from tests.support.pipeline_client import AudioClient
from tests.support.pipeline_stack import service_starters, start_services
from tests.support.ports import free_port
from tests.support.speech import espeak_wav
from tests.support.voices import ENROL_SENTENCES, TEST_SENTENCES
from tests.support.wyoming_process import ServiceProcess

pytestmark = pytest.mark.timeout(120)

HA_TOKEN = "ha-long-lived-token-for-tests"
SEED_CONFIG_FIELDS = (
    "language", "tts_provider", "tts_qwen_backend", "tts_voice",
    "stt_model", "stt_device", "wake_word", "wake_word_engine",
)  # fmt: skip
SEED_STATUS_FIELDS = (
    "state", "language", "tts_provider", "is_speaking", "is_processing", "is_running",
    "uptime_seconds", "active_speaker", "active_soul", "homeassistant_connected",
)  # fmt: skip
SEED_LANGUAGES = [
    "en", "ru", "es", "pt", "fr", "it", "de", "tr", "pl", "zh", "ja", "ko", "hi", "ar", "id",
]  # fmt: skip
USER_SOUL = """---
id: pirate
name: Pirate
description: Talks like a pirate
model: claude-haiku-4-5
voice: en_US-kiwi_test-x_low
---
Arr, you are Kiwi the pirate.
"""


@pytest.fixture(scope="module")
def tts_service(
    tmp_path_factory: pytest.TempPathFactory, offline_models_dir: Path
) -> Iterator[ServiceProcess]:
    starters = service_starters(offline_models_dir, tmp_path_factory.mktemp("tts"))
    service = start_services(starters, ("tts",))["tts"]
    yield service
    service.stop()


@pytest.fixture(scope="module")
def fake_ha() -> Iterator[FakeHomeAssistant]:
    server = FakeHomeAssistant(HA_TOKEN)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, tts_service: ServiceProcess
) -> Iterator[HubProcess]:
    root = tmp_path_factory.mktemp("hub")
    souls = root / "souls"
    souls.mkdir()
    (souls / "pirate.md").write_text(USER_SOUL)
    (souls / "broken.md").write_text("no front matter here")
    process = start_hub(
        root / "data",
        tts_uri=tts_service.uri,
        args=["--souls-dir", str(souls)],
        env={"KIWI_HA_TOKEN": HA_TOKEN},
    )
    yield process
    process.stop()


async def current_seq(client: CheckedClient) -> int:
    return int((await client.call("GET", "/api/status")).body["event_seq"])


async def events_after(client: CheckedClient, seq: int, until: str) -> list[dict[str, Any]]:
    """The event frames after `seq`, replayed or live, up to the first `until` event."""
    socket = await client.events(since=seq)
    try:
        hello = await socket.next()
        assert hello["event"] == "hello"
        return await socket.until(until)
    finally:
        await socket.close()


def names(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["event"] for frame in frames]


# ---- REST, seed 001 in order --------------------------------------------------------------------


async def test_openapi_document_is_served_and_valid(
    client: CheckedClient, contract: OpenApiContract
) -> None:
    answer = await client.call("GET", "/api/openapi.json")
    assert answer.status == 200
    assert answer.body == contract.document
    contract.check_document()
    assert answer.body["openapi"] == "3.1.0"


async def test_health_needs_no_token(client: CheckedClient) -> None:
    answer = await client.call("GET", "/api/health", token=None)
    assert answer.status == 200
    assert answer.body["status"] == "ok"


async def test_status_has_the_seed_fields(client: CheckedClient) -> None:
    answer = await client.call("GET", "/api/status")
    assert answer.status == 200
    assert set(SEED_STATUS_FIELDS) <= set(answer.body)
    assert answer.body["state"] == "IDLE"
    assert answer.body["is_running"] is True
    assert answer.body["active_soul"] == "default"
    assert answer.body["tts_provider"] == "piper"


async def test_config_get_shows_seed_fields_and_no_secrets(client: CheckedClient) -> None:
    answer = await client.call("GET", "/api/config")
    assert answer.status == 200
    assert set(SEED_CONFIG_FIELDS) <= set(answer.body)
    assert answer.body["tts_provider"] == "piper"
    assert HA_TOKEN not in json.dumps(answer.body)
    assert answer.body["secrets_configured"]["homeassistant_token"] is True
    # Kiwi addition: the voices kiwi-tts has on disk, asked from the real service
    assert answer.body["tts_voices"] == [offline_models.PIPER_VOICE_NAME]


async def test_config_patch_answers_only_what_changed(client: CheckedClient) -> None:
    before = (await client.call("GET", "/api/config")).body
    seq = await current_seq(client)
    patch = {"language": "ru", "wake_word": before["wake_word"], "tts_default_style": "cheerful"}
    answer = await client.call("PATCH", "/api/config", json=patch)
    assert answer.status == 200
    # The seed's own answer; tts_default_style is accepted but is not a setting in Kiwi.
    assert answer.body["updated"] == {"language": "ru"}
    assert set(answer.body["ignored"]) == {"tts_default_style"}
    # kiwi-tts has no Russian voice: the answer says so.
    assert [n["code"] for n in answer.body["notices"]] == ["no_voice_for_language"]
    after = (await client.call("GET", "/api/config")).body
    assert after["language"] == "ru"
    assert "tts_default_style" not in after
    assert after["tts_qwen_backend"] == "none"
    frames = await events_after(client, seq, "CONFIG_CHANGED")
    assert frames[-1]["data"] == {"updated": {"language": "ru"}}
    again = await client.call("PATCH", "/api/config", json=patch)
    assert again.body["updated"] == {}
    reset = await client.call(
        "PATCH", "/api/config", json={"language": None, "tts_default_style": None}
    )
    assert reset.body["updated"] == {"language": "en"}


async def test_languages_lists_the_15_codes_and_switches(client: CheckedClient) -> None:
    answer = await client.call("GET", "/api/languages")
    assert answer.status == 200
    assert answer.body == {"current": "en", "available": SEED_LANGUAGES}
    switched = await client.call("POST", "/api/language", json={"language": "de"})
    assert switched.status == 200
    assert switched.body["language"] == "de"
    assert (await client.call("GET", "/api/languages")).body["current"] == "de"
    assert (await client.call("GET", "/api/status")).body["language"] == "de"
    await client.call("POST", "/api/language", json={"language": "en"})


async def test_speakers_list_block_unblock_delete(client: CheckedClient) -> None:
    owner = await client.call(
        "POST",
        "/api/speakers/enroll",
        params={"name": "Owner", "priority": "0"},
        data=espeak_wav(ENROL_SENTENCES[0], "en-us+m3").read_bytes(),
        headers={"Content-Type": "audio/wav"},
    )
    assert owner.status == 200, owner.body
    assert (owner.body["ready"], owner.body["samples_needed"]) == (False, 2)
    for sentence in ENROL_SENTENCES[1:]:  # a voice is named once it has three samples
        more = await client.call(
            "POST",
            "/api/speakers/enroll",
            params={"id": owner.body["id"]},
            data=espeak_wav(sentence, "en-us+m3").read_bytes(),
            headers={"Content-Type": "audio/wav"},
        )
        assert more.status == 200, more.body
    assert (more.body["sample_count"], more.body["ready"]) == (3, True)
    guest = await client.call(
        "POST",
        "/api/speakers/enroll",
        params={"name": "Guest"},
        data=espeak_wav("she sells sea shells by the sea shore", "en-us+f2").read_bytes(),
        headers={"Content-Type": "audio/wav"},
    )
    assert guest.status == 200, guest.body
    owner_id, guest_id = owner.body["id"], guest.body["id"]

    listed = await client.call("GET", "/api/speakers")
    assert listed.status == 200
    by_id = {profile["id"]: profile for profile in listed.body["speakers"]}
    assert by_id[owner_id]["name"] == "Owner"
    assert by_id[owner_id]["priority"] == 0
    assert by_id[guest_id]["priority"] == 2
    assert by_id[guest_id]["is_blocked"] is False

    seq = await current_seq(client)
    blocked = await client.call("POST", f"/api/speakers/{guest_id}/block")
    assert blocked.body == {"blocked": guest_id}
    frames = await events_after(client, seq, "SPEAKER_UPDATED")
    assert frames[-1]["data"]["is_blocked"] is True
    listed = await client.call("GET", "/api/speakers")
    assert {p["id"]: p for p in listed.body["speakers"]}[guest_id]["is_blocked"] is True
    unblocked = await client.call("POST", f"/api/speakers/{guest_id}/unblock")
    assert unblocked.body == {"unblocked": guest_id}

    renamed = await client.call("PATCH", f"/api/speakers/{guest_id}", json={"name": "Visitor"})
    assert renamed.status == 200
    assert renamed.body["name"] == "Visitor"

    deleted = await client.call("DELETE", f"/api/speakers/{guest_id}")
    assert deleted.body == {"deleted": guest_id}
    listed = await client.call("GET", "/api/speakers")
    assert guest_id not in {p["id"] for p in listed.body["speakers"]}
    again = await client.call("DELETE", f"/api/speakers/{guest_id}")
    assert again.status == 404
    assert again.body["error"]["code"] == "unknown_speaker"
    for action in ("block", "unblock"):
        missing = await client.call("POST", f"/api/speakers/spk_00000000/{action}")
        assert missing.status == 404


async def test_identify_publishes_speaker_identified(client: CheckedClient) -> None:
    seq = await current_seq(client)
    answer = await client.call(
        "POST",
        "/api/speakers/identify",
        data=espeak_wav(TEST_SENTENCES[0], "en-us+m3").read_bytes(),
        headers={"Content-Type": "audio/wav"},
    )
    assert answer.status == 200
    assert answer.body["name"] == "Owner"
    assert (answer.body["decision"], answer.body["reason"]) == ("known", "match")
    assert answer.body["best"]["id"] == answer.body["id"]
    frames = await events_after(client, seq, "SPEAKER_IDENTIFIED")
    data = frames[-1]["data"]
    assert data["name"] == "Owner"
    assert data["priority"] == 0
    assert 0.0 < data["confidence"] <= 1.0
    assert (await client.call("GET", "/api/status")).body["active_speaker"] == "Owner"


async def test_souls_list_current_and_switch(client: CheckedClient) -> None:
    answer = await client.call("GET", "/api/souls")
    assert answer.status == 200
    souls = {soul["id"]: soul for soul in answer.body["souls"]}
    assert {"default", "comedian", "siren", "butler", "storyteller", "pirate"} <= set(souls)
    assert "broken" not in souls
    assert souls["siren"]["nsfw"] is True
    assert souls["pirate"]["source"] == "user"
    assert souls["comedian"]["model"] == "claude-haiku-4-5"

    current = await client.call("GET", "/api/soul/current")
    assert current.body["id"] == "default"

    seq = await current_seq(client)
    switched = await client.call("POST", "/api/soul", json={"soul": "comedian"})
    assert switched.status == 200
    assert switched.body == {
        "soul": "comedian",
        "name": "Comedian",
        "nsfw": False,
        "model": "claude-haiku-4-5",
    }
    frames = await events_after(client, seq, "SOUL_CHANGED")
    assert frames[-1]["data"]["soul"] == "comedian"
    assert frames[-1]["data"]["name"] == "Comedian"
    current = await client.call("GET", "/api/soul/current")
    assert current.body["id"] == "comedian"
    assert (await client.call("GET", "/api/status")).body["active_soul"] == "comedian"

    unknown = await client.call("POST", "/api/soul", json={"soul": "nobody"})
    assert unknown.status == 404
    assert unknown.body["error"]["code"] == "unknown_soul"


async def test_nsfw_soul_needs_the_owners_consent(client: CheckedClient) -> None:
    refused = await client.call("POST", "/api/soul", json={"soul": "siren"})
    assert refused.status == 403
    assert refused.body["error"]["code"] == "nsfw_not_allowed"
    await client.call("PATCH", "/api/config", json={"allow_nsfw": True})
    allowed = await client.call("POST", "/api/soul", json={"soul": "siren"})
    assert allowed.status == 200
    assert allowed.body["nsfw"] is True
    seq = await current_seq(client)
    await client.call("PATCH", "/api/config", json={"allow_nsfw": False})
    frames = await events_after(client, seq, "SOUL_CHANGED")
    assert frames[-1]["data"]["soul"] == "default"
    assert (await client.call("GET", "/api/soul/current")).body["id"] == "default"


async def test_tts_test_with_nothing_to_play_on_is_an_error(client: CheckedClient) -> None:
    """No browser connected and no host speaker: "speaking" would be a lie."""
    answer = await client.call("POST", "/api/tts/test")
    assert answer.status == 503
    assert answer.body["error"]["code"] == "no_audio_output"


async def test_tts_test_speaks_through_kiwi_tts(client: CheckedClient, hub: HubProcess) -> None:
    async with (
        aiohttp.ClientSession() as session,
        AudioClient.connect(session, hub.ws_url("/api/audio"), hello={}) as browser,
    ):
        await _speak_and_check(client, browser)


async def _speak_and_check(client: CheckedClient, browser: AudioClient) -> None:
    seq = await current_seq(client)
    answer = await client.call("POST", "/api/tts/test")
    assert answer.status == 200
    played_on = [f"browser:{browser.frames('hello_ack')[0]['session_id']}"]
    assert answer.body == {
        "status": "speaking",
        "text": "Hello, I am Kiwi!",
        "played_on": played_on,
    }
    frames = await events_after(client, seq, "TTS_FINISHED")
    frames += await events_after(client, frames[-1]["seq"], "STATE_CHANGED")
    assert names(frames) == ["STATE_CHANGED", "TTS_STARTED", "TTS_FINISHED", "STATE_CHANGED"]
    # `session`: whose turn; an announcement to every output is the broadcast's.
    assert frames[0]["data"] == {"old": "IDLE", "new": "SPEAKING", "session": "broadcast"}
    assert frames[1]["data"]["text"] == "Hello, I am Kiwi!"
    assert frames[1]["data"]["provider"] == "piper"
    assert frames[2]["data"]["interrupted"] is False
    assert frames[2]["data"]["audio_seconds"] > 0
    assert frames[3]["data"] == {"old": "SPEAKING", "new": "IDLE", "session": "broadcast"}
    seqs = [frame["seq"] for frame in frames]
    assert seqs == sorted(seqs) == list(range(seq + 1, seq + 5))

    custom = await client.call("POST", "/api/tts/test", json={"text": "Testing one two."})
    assert custom.body == {"status": "speaking", "text": "Testing one two.", "played_on": played_on}
    await browser.wait_frame("audio_start")
    assert browser.audio_bytes() > 0  # it did play where it said

    # Only the output named `target` plays; an output nobody connected is refused.
    aimed = await client.call("POST", "/api/tts/test", json={"text": "Hi.", "target": played_on[0]})
    assert aimed.body["played_on"] == played_on
    missing = await client.call("POST", "/api/tts/test", json={"text": "Hi.", "target": "host"})
    assert missing.status == 404
    assert missing.body["error"]["code"] == "unknown_output"
    assert played_on[0] in missing.body["error"]["message"]  # it says what is connected


async def test_stop_and_reset_context(client: CheckedClient) -> None:
    stopped = await client.call("POST", "/api/stop")
    assert stopped.status == 200
    assert stopped.body == {"status": "stopped"}
    seq = await current_seq(client)
    reset = await client.call("POST", "/api/reset-context")
    assert reset.body == {"status": "context_reset"}
    frames = await events_after(client, seq, "CONTEXT_RESET")
    assert frames[-1]["data"] == {}


async def test_homeassistant_status_and_command(
    client: CheckedClient, fake_ha: FakeHomeAssistant
) -> None:
    status = await client.call("GET", "/api/homeassistant/status")
    assert status.body == {"enabled": False, "connected": False, "mode": "disabled"}
    refused = await client.call("POST", "/api/homeassistant/command", json={"text": "lights on"})
    assert refused.status == 503
    assert refused.body["error"]["code"] == "homeassistant_not_configured"

    await client.call("PATCH", "/api/config", json={"homeassistant_url": fake_ha.url})
    status = await client.call("GET", "/api/homeassistant/status")
    assert status.body == {"enabled": True, "connected": True, "mode": "direct"}
    assert (await client.call("GET", "/api/status")).body["homeassistant_connected"] is True

    command = {"text": "turn on bedroom lights", "language": "en"}
    answer = await client.call("POST", "/api/homeassistant/command", json=command)
    assert answer.status == 200
    assert answer.body["command"] == "turn on bedroom lights"
    assert answer.body["response"] == "Done: turn on bedroom lights"
    assert answer.body["response_type"] == "action_done"
    assert fake_ha.commands[-1] == {"text": "turn on bedroom lights", "language": "en"}


async def test_failing_service_publishes_error(client: CheckedClient) -> None:
    await client.call(
        "PATCH", "/api/config", json={"homeassistant_url": f"http://127.0.0.1:{free_port()}"}
    )
    seq = await current_seq(client)
    answer = await client.call("POST", "/api/homeassistant/command", json={"text": "lights off"})
    assert answer.status == 503
    assert answer.body["error"]["code"] == "homeassistant_unavailable"
    frames = await events_after(client, seq, "ERROR")
    assert frames[-1]["data"]["source"] == "homeassistant"
    assert frames[-1]["data"]["message"]
    status = await client.call("GET", "/api/homeassistant/status")
    assert status.body["connected"] is False
    await client.call("PATCH", "/api/config", json={"homeassistant_url": None})


# ---- events, seed 000 ---------------------------------------------------------------------------


async def test_event_stream_hello_ping_pong(client: CheckedClient) -> None:
    socket = await client.events()
    try:
        hello = await socket.next()
        assert hello["event"] == "hello"
        assert hello["data"]["state"] == "IDLE"
        assert hello["data"]["seq"] == await current_seq(client)
        await socket.send({"type": "ping"})
        assert await socket.next() == {"event": "pong"}
    finally:
        await socket.close()


async def test_seed_events_seen_with_their_envelope(client: CheckedClient) -> None:
    """Every seed event the hub's own code paths emit went by in this module, checked."""
    history = await client.call(
        "GET", "/api/events/history", params={"since": "0", "limit": "1000"}
    )
    events = history.body["events"]
    seen = {frame["event"] for frame in events}
    emitted_by_the_hub = {
        "STATE_CHANGED", "SPEAKER_IDENTIFIED", "TTS_STARTED",
        "TTS_FINISHED", "SOUL_CHANGED", "ERROR",
    }  # fmt: skip
    assert emitted_by_the_hub <= seen
    for frame in events:
        assert set(frame) == {"event", "data", "timestamp", "source", "seq"}
    seqs = [frame["seq"] for frame in events]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_live_events_reach_a_filtered_client(client: CheckedClient) -> None:
    socket = await client.events(types="SOUL_CHANGED")
    try:
        assert (await socket.next())["data"]["types"] == ["SOUL_CHANGED"]
        await client.call("POST", "/api/language", json={"language": "fr"})
        await client.call("POST", "/api/soul", json={"soul": "butler"})
        frame = await socket.next()
        assert frame["event"] == "SOUL_CHANGED"
        assert frame["data"]["soul"] == "butler"
    finally:
        await socket.close()
    await client.call("POST", "/api/language", json={"language": "en"})


# ---- lifecycle (last: these end the hub process) ------------------------------------------------


async def test_restart_exits_for_the_launcher_and_comes_back(
    client: CheckedClient, hub: HubProcess
) -> None:
    seq = await current_seq(client)
    answer = await client.call("POST", "/api/restart")
    assert answer.body == {"status": "restarting"}
    assert hub.wait() == 75
    restart_hub(hub)
    frames = await events_after(client, seq, "HUB_STOPPING")
    assert frames[-1]["data"] == {"reason": "restart"}
    assert (await client.call("GET", "/api/soul/current")).body["id"] == "butler"


async def test_shutdown_stops_cleanly(client: CheckedClient, hub: HubProcess) -> None:
    answer = await client.call("POST", "/api/shutdown")
    assert answer.body == {"status": "shutting_down"}
    assert hub.wait() == 0


def test_every_documented_hub_operation_was_exercised(contract: OpenApiContract) -> None:
    # The voice pipeline's endpoints (tags audio, conversation) have their own contract tests.
    hub_tags = ("system", "config", "speakers", "souls", "controls", "homeassistant", "events")
    assert contract.unseen_successes(hub_tags) == []
