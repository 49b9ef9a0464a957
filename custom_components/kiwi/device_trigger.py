"""Device triggers of the hub: "Kiwi heard its wake word", "Kiwi recognised a speaker"."""

from __future__ import annotations

import voluptuous as vol
from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.device_automation.exceptions import (
    InvalidDeviceAutomationConfig,
)
from homeassistant.components.homeassistant.triggers import event as event_trigger
from homeassistant.const import (
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_EVENT_DATA,
    CONF_PLATFORM,
    CONF_TYPE,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .const import DEVICE_TRIGGER_EVENTS, DOMAIN, KIWI_EVENT

# Trigger type (translated in device_automation.trigger_type) -> hub event name.
TRIGGER_TYPES = {event.lower(): event for event in DEVICE_TRIGGER_EVENTS}

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend({vol.Required(CONF_TYPE): vol.In(TRIGGER_TYPES)})


def _is_hub_device(hass: HomeAssistant, device_id: str) -> bool:
    """Only the hub device has triggers; speaker devices hang below it (via_device)."""
    device = dr.async_get(hass).async_get(device_id)
    return (
        device is not None
        and device.via_device_id is None
        and any(domain == DOMAIN for domain, _ in device.identifiers)
    )


async def async_validate_trigger_config(hass: HomeAssistant, config: ConfigType) -> ConfigType:
    """Check the trigger names a Kiwi hub device."""
    config = TRIGGER_SCHEMA(config)
    if not _is_hub_device(hass, config[CONF_DEVICE_ID]):
        raise InvalidDeviceAutomationConfig(
            translation_domain=DOMAIN,
            translation_key="invalid_trigger_device",
            translation_placeholders={"device_id": config[CONF_DEVICE_ID]},
        )
    return config


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, str]]:
    """The triggers a hub device offers."""
    if not _is_hub_device(hass, device_id):
        return []
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type in TRIGGER_TYPES
    ]


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Fire on the ``kiwi_event`` bus event of this hub and type, when it is live.

    A replayed event (it happened while Home Assistant was disconnected) only updates state: a
    wake word from minutes ago must not dim the lights now.
    """
    event_config = event_trigger.TRIGGER_SCHEMA(
        {
            CONF_PLATFORM: "event",
            event_trigger.CONF_EVENT_TYPE: KIWI_EVENT,
            CONF_EVENT_DATA: {
                "device_id": config[CONF_DEVICE_ID],
                "type": TRIGGER_TYPES[config[CONF_TYPE]],
                "replayed": False,
            },
        }
    )
    return await event_trigger.async_attach_trigger(
        hass, event_config, action, trigger_info, platform_type="device"
    )
