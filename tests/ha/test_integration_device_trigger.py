"""Device triggers of the hub device: "Kiwi heard its wake word", "Kiwi recognised a speaker"."""

from __future__ import annotations

import pytest
from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_get_device_automations,
)

from custom_components.kiwi.api import KiwiClient
from custom_components.kiwi.const import DOMAIN
from custom_components.kiwi.device_trigger import async_validate_trigger_config
from tests.ha.kiwi_common import TEST_UNIQUE_ID, say_to_kiwi, wait_for
from tests.support.speech import espeak_wav
from tests.support.voices import TEST_SENTENCES

# Real processes behind every test: a hang fails the test instead of the run.
pytestmark = pytest.mark.timeout(120)


def hub_device(hass: HomeAssistant) -> dr.DeviceEntry:
    """The hub's device."""
    device = dr.async_get(hass).async_get_device(identifiers={(DOMAIN, TEST_UNIQUE_ID)})
    assert device is not None
    return device


async def automate(hass: HomeAssistant, device_id: str, trigger_type: str) -> list[ServiceCall]:
    """An automation on a Kiwi device trigger; the calls its action makes."""
    calls: list[ServiceCall] = []
    hass.services.async_register("test", "record", calls.append)
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: {
                "triggers": {
                    "trigger": "device",
                    "domain": DOMAIN,
                    "device_id": device_id,
                    "type": trigger_type,
                },
                "actions": {
                    "action": "test.record",
                    "data": {"data": "{{ trigger.event.data.data }}"},
                },
            }
        },
    )
    return calls


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_triggers_of_hub_and_speaker_devices(
    hass: HomeAssistant, init_integration: MockConfigEntry, speaker_ids: dict[str, str]
) -> None:
    """The hub device offers both triggers; a speaker device offers none."""
    triggers = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, hub_device(hass).id
    )
    kiwi_triggers = sorted(t["type"] for t in triggers if t["domain"] == DOMAIN)
    assert kiwi_triggers == ["speaker_identified", "wake_word_detected"]

    speaker = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{TEST_UNIQUE_ID}_speaker_{speaker_ids['Alice']}")}
    )
    assert speaker is not None
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, speaker.id)
    assert [t for t in triggers if t["domain"] == DOMAIN] == []


async def test_wake_word_trigger(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """The wake word in real audio runs the automation: a UI-made "when Kiwi hears its word"."""
    calls = await automate(hass, hub_device(hass).id, "wake_word_detected")
    await say_to_kiwi(hub_client, "hey jarvis, turn on the radio")
    await wait_for(hass, lambda: len(calls) == 1, "the wake word trigger did not fire")


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_speaker_identified_trigger(
    hass: HomeAssistant, hub_client: KiwiClient, init_integration: MockConfigEntry
) -> None:
    """A recognised voice runs the automation, with who it was in the trigger data."""
    calls = await automate(hass, hub_device(hass).id, "speaker_identified")
    # A sentence, not a two-second command: a voice is named on strong evidence only.
    clip = espeak_wav(TEST_SENTENCES[2], voice="en-us+m3")
    await hub_client.request("POST", "/api/speakers/identify", wav=clip.read_bytes())
    await wait_for(hass, lambda: len(calls) == 1, "the speaker trigger did not fire")
    assert calls[0].data["data"]["name"] == "Alice"


@pytest.mark.parametrize("hub_speakers", [["Alice"]])
async def test_trigger_on_a_speaker_device_is_invalid(
    hass: HomeAssistant, init_integration: MockConfigEntry, speaker_ids: dict[str, str]
) -> None:
    """Only the hub device has triggers."""
    speaker = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{TEST_UNIQUE_ID}_speaker_{speaker_ids['Alice']}")}
    )
    assert speaker is not None
    config = {
        "platform": "device",
        "domain": DOMAIN,
        "device_id": speaker.id,
        "type": "wake_word_detected",
    }
    with pytest.raises(InvalidDeviceAutomationConfig):
        await async_validate_trigger_config(hass, config)
