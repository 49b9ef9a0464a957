"""The connection to one hub: a REST snapshot kept current by the event stream."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import (
    Backoff,
    Hello,
    HubInfo,
    KiwiAuthenticationError,
    KiwiClient,
    KiwiError,
    KiwiEvent,
    KiwiEventStream,
    KiwiResponseError,
    SpeakerProfile,
)
from .const import (
    CONF_SPEAKER_PERSONS,
    IGNORED_EVENTS,
    KIWI_EVENT,
    LOGGER,
    RECONNECT_INITIAL_DELAY,
    RECONNECT_MAX_DELAY,
)
from .errors import hub_setup_error
from .issues import KiwiIssues
from .state import KiwiSnapshot, apply_event, build_snapshot

KiwiEventCallback: TypeAlias = Callable[[KiwiEvent, dict[str, Any]], None]


@dataclass(slots=True)
class KiwiData:
    """What a loaded config entry keeps at runtime."""

    client: KiwiClient
    coordinator: KiwiCoordinator
    info: HubInfo


KiwiConfigEntry: TypeAlias = ConfigEntry[KiwiData]


class KiwiCoordinator(DataUpdateCoordinator[KiwiSnapshot]):
    """Owns the event stream of one hub and the snapshot its entities read.

    Push only: nothing polls. The snapshot is read over REST at start and after every
    reconnect, and patched by each event in between.
    """

    config_entry: KiwiConfigEntry

    def __init__(self, hass: HomeAssistant, entry: KiwiConfigEntry, client: KiwiClient) -> None:
        """Prepare the coordinator; ``async_connect`` makes the first connection."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"Kiwi hub {client.base_url}",
            update_interval=None,
            always_update=False,
        )
        self.client = client
        self.stream = KiwiEventStream(
            client,
            self,
            backoff=Backoff(initial=RECONNECT_INITIAL_DELAY, maximum=RECONNECT_MAX_DELAY),
        )
        self.connected = False
        self.hub_device_id: str | None = None
        self._event_callbacks: list[KiwiEventCallback] = []
        self.issues = KiwiIssues(hass, entry.entry_id, client.base_url)

    async def async_connect(self) -> HubInfo:
        """First connection: identity, snapshot and event stream, or a translated setup error."""
        try:
            info = await self.client.health()
            snapshot = await self._async_fetch_snapshot()
            await self.stream.connect()
        except KiwiError as err:
            raise hub_setup_error(err, self.client.base_url, ConfigEntryNotReady) from err
        self.async_set_updated_data(snapshot)
        self.config_entry.async_create_background_task(
            self.hass, self.stream.run(), name=f"kiwi event stream {self.client.base_url}"
        )
        return info

    async def async_shutdown(self) -> None:
        """Stop timers and the socket with the entry."""
        await super().async_shutdown()
        self.issues.stop_clock()
        await self.stream.close()

    async def _async_update_data(self) -> KiwiSnapshot:
        try:
            return await self._async_fetch_snapshot()
        except KiwiError as err:
            raise hub_setup_error(err, self.client.base_url, UpdateFailed) from err

    async def _async_fetch_snapshot(self) -> KiwiSnapshot:
        status, config, languages, souls, speakers = await asyncio.gather(
            self.client.status(),
            self.client.config(),
            self.client.languages(),
            self.client.souls(),
            self._async_fetch_speakers(),
        )
        self.issues.check_config(config)
        return build_snapshot(
            status=status,
            config=config,
            languages=languages,
            souls=souls,
            speakers=speakers,
            previous=self.data,
        )

    async def _async_fetch_speakers(self) -> list[SpeakerProfile] | None:
        """The profiles, or None while the hub's speaker service is down (the hub is fine)."""
        try:
            return await self.client.speakers()
        except KiwiResponseError as err:
            if err.status < 500:
                raise
            LOGGER.debug("The hub cannot list speaker profiles now: %s", err)
            return None

    # Event callbacks for entities (the event entity) that want every event, not the snapshot.

    @callback
    def async_add_event_callback(self, event_callback: KiwiEventCallback) -> CALLBACK_TYPE:
        """Call ``event_callback(event, data_with_person)`` for every live hub event."""
        self._event_callbacks.append(event_callback)
        return lambda: self._event_callbacks.remove(event_callback)

    def person_for(self, event: KiwiEvent) -> str | None:
        """The HA person linked to the speaker an event names, if any."""
        links: dict[str, str] = self.config_entry.options.get(CONF_SPEAKER_PERSONS, {})
        if event.event == "SPEAKER_IDENTIFIED":
            speaker_id, name = event.data.get("id"), event.data.get("name")
        else:
            speaker_id, name = event.data.get("speaker_id"), event.data.get("speaker")
        if isinstance(speaker_id, str) and speaker_id in links:
            return links[speaker_id]
        if isinstance(name, str) and self.data is not None:
            profile = self.data.speaker_by_name(name)
            if profile is not None:
                return links.get(profile.id)
        return None

    # EventStreamListener: called by the stream on the event loop.

    def on_connected(self, hello: Hello, *, reconnected: bool) -> None:
        """Back online: say so once, then read the snapshot again."""
        self.issues.hub_back()
        self.connected = True
        if not reconnected:
            return
        LOGGER.info("Reconnected to the Kiwi hub at %s", self.client.base_url)
        self.async_update_listeners()
        self.config_entry.async_create_background_task(
            self.hass, self.async_refresh(), name="kiwi resync"
        )

    def on_event(self, event: KiwiEvent, *, replayed: bool) -> None:
        """Forward one event to the bus (with ``replayed``); patch the snapshot.

        Only a live event reaches the event entity (and, through ``replayed: false`` in their
        event filter, the device triggers): what happened while HA was away updates state, it
        does not act now.
        """
        if event.event in IGNORED_EVENTS:
            return
        data = dict(event.data)
        if (person := self.person_for(event)) is not None:
            data["person"] = person
        self.hass.bus.async_fire(
            KIWI_EVENT,
            {
                "type": event.event,
                "data": data,
                "device_id": self.hub_device_id,
                "config_entry_id": self.config_entry.entry_id,
                "seq": event.seq,
                "replayed": replayed,
            },
        )
        if not replayed:
            for event_callback in list(self._event_callbacks):
                event_callback(event, data)
        self.issues.track_models(event)
        self.issues.track_settings(event)
        if self.data is not None:
            self.async_set_updated_data(apply_event(self.data, event, replayed=replayed))

    def on_disconnected(self, error: KiwiError) -> None:
        """Gone: say so once, mark entities unavailable, and start the repair clock."""
        if not self.connected:
            return
        self.connected = False
        LOGGER.warning(
            "Lost the connection to the Kiwi hub at %s (%s); reconnecting",
            self.client.base_url,
            error,
        )
        self.async_update_listeners()
        self.issues.hub_lost()

    def on_auth_failed(self, error: KiwiAuthenticationError) -> None:
        """The token was refused while running: ask the user for a new one."""
        LOGGER.warning("The Kiwi hub at %s refused the token", self.client.base_url)
        self.issues.stop_clock()
        self.config_entry.async_start_reauth(self.hass)
