"""Each satellite's *Replies on* select: Kiwi's answers to that microphone play on the microphone
itself (default) or on a chosen media player (the living room's speaker beside a tablet that
has none). The select platform (select.py) adds these beside the hub's selects.

Choosing a media player tells the hub to keep that satellite's replies off its own speaker
(`PATCH /api/satellites/{id}`); the satellite entity then says each of its turns' replies on the
player through Home Assistant's TTS (replies.py).
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity
from homeassistant.util.hass_dict import HassKey

from .api import KiwiError, KiwiEvent, SatelliteInfo
from .const import DOMAIN, LOGGER
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity, kiwi_command, satellite_identifier

HERE = "satellite"  # the satellite's own speaker
REPLIES_ON = SelectEntityDescription(
    key="replies_on", translation_key="replies_on", entity_category=EntityCategory.CONFIG
)
# entry id -> satellite id -> the media player its replies play on
REPLY_PLAYERS: HassKey[dict[str, dict[str, str]]] = HassKey(f"{DOMAIN}_reply_players")


@callback
def reply_player(hass: HomeAssistant, entry_id: str, satellite_id: str) -> str | None:
    """The media player a satellite's replies play on; None: the satellite itself."""
    return hass.data.get(REPLY_PLAYERS, {}).get(entry_id, {}).get(satellite_id)


async def async_setup_reply_selects(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """One select per satellite, for those there now and those that join later."""
    data = entry.runtime_data
    selects: dict[str, KiwiReplySelect] = {}

    @callback
    def present(found: list[SatelliteInfo]) -> None:
        new = [KiwiReplySelect(entry, info) for info in found if info.id not in selects]
        selects.update((select.satellite_id, select) for select in new)
        if new:
            async_add_entities(new)

    @callback
    def on_event(event: KiwiEvent, _data: dict[str, Any]) -> None:
        if event.event == "SATELLITES_CHANGED":
            items = event.data.get("satellites")
            if isinstance(items, list):
                present([SatelliteInfo.from_dict(i) for i in items if isinstance(i, dict)])

    try:
        present(await data.client.satellites())
    except KiwiError as err:
        LOGGER.debug("Cannot list the hub's satellites now: %s", err)
    entry.async_on_unload(data.coordinator.async_add_event_callback(on_event))

    @callback
    def forget() -> None:
        hass.data.get(REPLY_PLAYERS, {}).pop(entry.entry_id, None)

    entry.async_on_unload(forget)


class KiwiReplySelect(KiwiEntity, SelectEntity, RestoreEntity):
    """Where one satellite's replies play."""

    def __init__(self, entry: KiwiConfigEntry, info: SatelliteInfo) -> None:
        """Bind the select to one satellite's device."""
        super().__init__(entry, REPLIES_ON)
        self.satellite_id = info.id
        identifier = satellite_identifier(entry, info.id)
        self._attr_unique_id = f"{identifier}_replies_on"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, identifier)})
        self._option = HERE
        self._was_connected = False

    @property
    def options(self) -> list[str]:
        """The satellite itself, or any media player Home Assistant has."""
        players = sorted(self.hass.states.async_entity_ids("media_player"))
        if self._option != HERE and self._option not in players:
            players.append(self._option)  # chosen before, gone for now: still shown
        return [HERE, *players]

    @property
    def current_option(self) -> str | None:
        """The choice in effect."""
        return self._option

    async def async_added_to_hass(self) -> None:
        """Take the last choice back and tell the hub (it forgets when it restarts)."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_state()) is not None and last.state:
            self._option = last.state if last.state.startswith("media_player.") else HERE
        self._remember()
        self._was_connected = self.coordinator.connected
        if self._option != HERE:
            await self._async_tell_hub()

    @callback
    def _handle_coordinator_update(self) -> None:
        # Back after an outage: the hub may have restarted and forgotten the choice.
        if self.coordinator.connected and not self._was_connected and self._option != HERE:
            self.coordinator.config_entry.async_create_background_task(
                self.hass, self._async_tell_hub(), name=f"{self.entity_id} replies"
            )
        self._was_connected = self.coordinator.connected
        super()._handle_coordinator_update()

    @kiwi_command
    async def async_select_option(self, option: str) -> None:
        """Play the satellite's replies here or on the chosen media player."""
        await self.coordinator.client.set_satellite_replies(self.satellite_id, here=option == HERE)
        self._option = option
        self._remember()
        self.async_write_ha_state()

    async def _async_tell_hub(self) -> None:
        try:
            await self.coordinator.client.set_satellite_replies(self.satellite_id, here=False)
        except KiwiError as err:
            LOGGER.warning("Could not tell the hub where %s replies: %s", self.satellite_id, err)

    @callback
    def _remember(self) -> None:
        players = self.hass.data.setdefault(REPLY_PLAYERS, {}).setdefault(
            self.coordinator.config_entry.entry_id, {}
        )
        if self._option == HERE:
            players.pop(self.satellite_id, None)
        else:
            players[self.satellite_id] = self._option
