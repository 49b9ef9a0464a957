"""The integration's actions, carried out by the real hub."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.kiwi.api import KiwiClient
from custom_components.kiwi.const import DOMAIN, KIWI_EVENT
from tests.ha.kiwi_common import browser_speaker, wait_for
from tests.support.hub_process import HubProcess
from tests.support.speech import espeak_wav

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)


async def act(hass: HomeAssistant, action: str, **data: object) -> object:
    """Call a kiwi action and wait for it."""
    return await hass.services.async_call(
        DOMAIN, action, data, blocking=True, return_response=action == "enroll_speaker"
    )


@pytest.fixture
async def recordings(socket_enabled: None) -> AsyncIterator[str]:
    """A local web server with one voice recording (/alice.wav); its base URL."""
    clip = espeak_wav("Hello Kiwi, I am Alice and I like green tea.", voice="en-us+m3")

    async def recording(request: web.Request) -> web.Response:
        return web.Response(body=clip.read_bytes(), content_type="audio/wav")

    app = web.Application()
    app.router.add_get("/alice.wav", recording)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/"))


async def test_speak_with_a_soul(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    kiwi_hub: HubProcess,
    init_integration: MockConfigEntry,
) -> None:
    """kiwi.speak switches the soul first, then the hub speaks the text, and says where."""
    events = async_capture_events(hass, KIWI_EVENT)
    async with browser_speaker(kiwi_hub, hub_client.session) as browser:
        answer = await hass.services.async_call(
            DOMAIN, "speak",
            {"config_entry_id": init_integration.entry_id, "text": "Dinner is ready.",
             "soul": "butler"},
            blocking=True, return_response=True,
        )  # fmt: skip
        await browser.wait_frame("audio_start")
    session_id = browser.frames("hello_ack")[0]["session_id"]
    assert answer == {"played_on": [f"browser:{session_id}"]}
    assert (await hub_client.status()).active_soul == "butler"
    await wait_for(
        hass,
        lambda: any(
            e.data["type"] == "TTS_STARTED" and e.data["data"]["text"] == "Dinner is ready."
            for e in events
        ),
        "the hub did not speak the text",
    )


async def test_speak_with_nothing_to_play_on_is_a_translated_error(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """No browser microphone, no host speaker: kiwi.speak fails and says why."""
    with pytest.raises(HomeAssistantError) as raised:
        await act(hass, "speak", config_entry_id=init_integration.entry_id, text="Anyone?")
    assert raised.value.translation_key == "no_audio_output"
    assert "Nothing can play Kiwi's voice" in str(raised.value)


async def test_speak_with_an_unknown_soul(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An unknown soul is refused before anything reaches the hub."""
    with pytest.raises(ServiceValidationError) as raised:
        await act(hass, "speak", config_entry_id=init_integration.entry_id, text="Hi", soul="x")
    assert raised.value.translation_key == "unknown_soul"
    assert "butler" in str(raised.value)


async def test_reset_context(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """kiwi.reset_context makes the hub forget the conversation (CONTEXT_RESET comes back)."""
    events = async_capture_events(hass, KIWI_EVENT)
    await act(hass, "reset_context", config_entry_id=init_integration.entry_id)
    await wait_for(
        hass,
        lambda: any(e.data["type"] == "CONTEXT_RESET" for e in events),
        "no CONTEXT_RESET",
    )


@pytest.mark.parametrize("action", ["approve", "deny"])
async def test_unknown_approval(
    hass: HomeAssistant, init_integration: MockConfigEntry, action: str
) -> None:
    """The hub knows no such request (404): a translated error naming the request."""
    with pytest.raises(ServiceValidationError) as raised:
        await act(hass, action, config_entry_id=init_integration.entry_id, request_id="apr_x")
    assert raised.value.translation_key == "approval_not_found"
    assert "apr_x" in str(raised.value)


async def test_enroll_from_a_file(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    init_integration: MockConfigEntry,
    tmp_path: Path,
) -> None:
    """kiwi.enroll_speaker reads an allowed file, the hub learns the voice, a device appears."""
    recording = tmp_path / "bob.wav"
    recording.write_bytes(
        espeak_wav("This is Bob speaking to Kiwi.", voice="en-us+f2").read_bytes()
    )
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    response = await act(
        hass, "enroll_speaker", config_entry_id=init_integration.entry_id, name="Bob",
        audio_path=str(recording), priority=0,
    )  # fmt: skip
    assert isinstance(response, dict)
    assert response["name"] == "Bob"
    assert response["priority"] == 0
    assert [p.id for p in await hub_client.speakers()] == [response["id"]]
    assert hass.states.get("switch.bob_blocked") is not None


async def test_enroll_from_a_url(
    hass: HomeAssistant,
    hub_client: KiwiClient,
    init_integration: MockConfigEntry,
    recordings: str,
) -> None:
    """kiwi.enroll_speaker downloads the recording with Home Assistant's session."""
    response = await act(
        hass, "enroll_speaker", config_entry_id=init_integration.entry_id, name="Alice",
        audio_url=f"{recordings}alice.wav",
    )  # fmt: skip
    assert isinstance(response, dict)
    assert [p.name for p in await hub_client.speakers()] == ["Alice"]


async def test_enroll_errors(
    hass: HomeAssistant, init_integration: MockConfigEntry, recordings: str, tmp_path: Path
) -> None:
    """Paths outside the allowlist, missing files, failed downloads and non-audio are refused."""
    entry_id = init_integration.entry_id
    with pytest.raises(ServiceValidationError) as raised:
        await act(
            hass, "enroll_speaker", config_entry_id=entry_id, name="X", audio_path="/etc/hosts"
        )
    assert raised.value.translation_key == "path_not_allowed"

    hass.config.allowlist_external_dirs = {str(tmp_path)}
    with pytest.raises(ServiceValidationError) as raised:
        await act(
            hass, "enroll_speaker", config_entry_id=entry_id, name="X",
            audio_path=str(tmp_path / "missing.wav"),
        )  # fmt: skip
    assert raised.value.translation_key == "recording_unreadable"

    with pytest.raises(HomeAssistantError) as raised:
        await act(
            hass, "enroll_speaker", config_entry_id=entry_id, name="X",
            audio_url=f"{recordings}nothing-here.wav",
        )  # fmt: skip
    assert raised.value.translation_key == "recording_unreadable"

    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not samples")
    with pytest.raises(HomeAssistantError) as raised:
        await act(
            hass, "enroll_speaker", config_entry_id=entry_id, name="X", audio_path=str(not_audio)
        )
    assert raised.value.translation_key == "action_failed"
    assert "WAV" in str(raised.value)


async def test_actions_need_a_loaded_kiwi_entry(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An unknown entry id, or an entry that is not loaded, is a validation error."""
    with pytest.raises(ServiceValidationError) as raised:
        await act(hass, "reset_context", config_entry_id="nope")
    assert raised.value.translation_key == "entry_not_found"

    await hass.config_entries.async_unload(init_integration.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await act(hass, "reset_context", config_entry_id=init_integration.entry_id)
    assert raised.value.translation_key == "entry_not_loaded"
    await hass.config_entries.async_setup(init_integration.entry_id)
