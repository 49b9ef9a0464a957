"""The Kiwi integration: Kiwi's voice hub in Home Assistant."""

from __future__ import annotations

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_TOKEN, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from .api import KiwiClient
from .const import DOMAIN
from .coordinator import KiwiConfigEntry, KiwiCoordinator, KiwiData
from .entity import hub_device_info
from .identity import async_adopt_instance_id
from .run_as import async_push_speaker_links, async_setup_run_as
from .services import async_setup_services
from .speakers import async_remove_stale_speaker_devices, is_stale_speaker_device

PLATFORMS: list[Platform] = [
    Platform.ASSIST_SATELLITE,
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CONVERSATION,
    Platform.EVENT,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.STT,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions (they name the config entry they act on)."""
    async_setup_services(hass)
    async_setup_run_as(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: KiwiConfigEntry) -> bool:
    """Connect to the hub, then set up its device and entities."""
    client = KiwiClient(
        entry.data[CONF_HOST],
        entry.data[CONF_PORT],
        entry.data[CONF_TOKEN],
        async_get_clientsession(hass),
    )
    coordinator = KiwiCoordinator(hass, entry, client)
    info = await coordinator.async_connect()
    if info.instance_id:  # entries from before instance ids take it over, devices and all
        async_adopt_instance_id(hass, entry, info.instance_id)
    entry.runtime_data = KiwiData(client=client, coordinator=coordinator, info=info)

    # The hub device exists before any entity so that device triggers can name it.
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id, **hub_device_info(entry)
    )
    coordinator.hub_device_id = device.id

    @callback
    def remove_stale_speakers() -> None:
        async_remove_stale_speaker_devices(hass, entry)

    remove_stale_speakers()
    entry.async_on_unload(coordinator.async_add_listener(remove_stale_speakers))

    await async_push_speaker_links(hass, entry)

    async def options_changed(hass: HomeAssistant, entry: KiwiConfigEntry) -> None:
        await async_push_speaker_links(hass, entry)

    entry.async_on_unload(entry.add_update_listener(options_changed))

    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: KiwiConfigEntry) -> bool:
    """Unload the entities; the coordinator closes the event stream with the entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: KiwiConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let the user delete a speaker device once the hub no longer has the profile."""
    return is_stale_speaker_device(entry, device)
