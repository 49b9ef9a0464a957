"""Assist satellites: Kiwi's own microphones (the host microphone, named browser microphones).

Kiwi runs its own voice pipeline in the hub, so these satellites do not stream audio to Home
Assistant's pipeline. Their state mirrors the hub's turn on that microphone (STATE_CHANGED names
whose turn it is); `announce` speaks through the hub on that microphone's speaker;
`start_conversation` speaks, then has the hub listen there without a wake word (the answer is a
Kiwi turn); `ask_question` speaks, has the hub transcribe the answer only, and Home Assistant
matches it against the answers given. docs/satellites.md.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.assist_pipeline import PipelineEvent, PipelineEventType
from homeassistant.components.assist_satellite import (
    AssistSatelliteAnnouncement,
    AssistSatelliteConfiguration,
    AssistSatelliteEntity,
    AssistSatelliteEntityDescription,
    AssistSatelliteEntityFeature,
    AssistSatelliteWakeWord,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import KiwiError, KiwiEvent, SatelliteInfo
from .const import DOMAIN, LOGGER, MANUFACTURER
from .coordinator import KiwiConfigEntry
from .entity import KiwiEntity, hub_identifier, satellite_identifier
from .errors import translated_hub_errors
from .replies import async_say_on_media_players
from .reply_select import reply_player

PARALLEL_UPDATES = 0

SATELLITE = AssistSatelliteEntityDescription(key="assist_satellite", name=None)

# The hub's assistant state -> the pipeline event that puts a satellite in the same state.
_STATE_EVENTS = {
    "LISTENING": PipelineEventType.STT_START,
    "PROCESSING": PipelineEventType.INTENT_START,
    "WAITING_APPROVAL": PipelineEventType.INTENT_START,
    "SPEAKING": PipelineEventType.TTS_START,
}


async def async_setup_entry(
    hass: HomeAssistant,
    entry: KiwiConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a satellite for every microphone the hub has, and for each one that joins later."""
    data = entry.runtime_data
    satellites: dict[str, KiwiAssistSatellite] = {}

    @callback
    def present(found: list[SatelliteInfo]) -> None:
        new = [KiwiAssistSatellite(entry, info) for info in found if info.id not in satellites]
        satellites.update((satellite.satellite_id, satellite) for satellite in new)
        if new:
            async_add_entities(new)
        ids = {info.id for info in found}
        for satellite_id, satellite in satellites.items():
            satellite.set_present(satellite_id in ids)

    turn_of: str | None = None  # the satellite whose turn runs (Kiwi speaks one at a time)

    @callback
    def on_event(event: KiwiEvent, _data: dict[str, Any]) -> None:
        nonlocal turn_of
        if event.event == "SATELLITES_CHANGED":
            items = event.data.get("satellites")
            if isinstance(items, list):
                present([SatelliteInfo.from_dict(i) for i in items if isinstance(i, dict)])
        elif event.event == "STATE_CHANGED":
            turn_of = str(event.data.get("session"))
            satellite = satellites.get(turn_of)
            if satellite is not None:
                satellite.mirror(str(event.data.get("new")))
        elif event.event == "TTS_FINISHED" and (satellite := satellites.get(str(turn_of))):
            satellite.reply_said(str(event.data.get("text") or ""))

    was_connected = data.coordinator.connected

    @callback
    def on_coordinator_update() -> None:
        # Back after an outage: microphones may have come and gone meanwhile.
        nonlocal was_connected
        if data.coordinator.connected and not was_connected:
            entry.async_create_background_task(hass, refresh(), name="kiwi satellites")
        was_connected = data.coordinator.connected

    async def refresh() -> None:
        try:
            present(await data.client.satellites())
        except KiwiError as err:
            LOGGER.debug("Cannot list the hub's satellites now: %s", err)

    await refresh()
    entry.async_on_unload(data.coordinator.async_add_event_callback(on_event))
    entry.async_on_unload(data.coordinator.async_add_listener(on_coordinator_update))


class KiwiAssistSatellite(KiwiEntity, AssistSatelliteEntity):
    """One of Kiwi's microphones, with the speaker beside it."""

    _attr_supported_features = (
        AssistSatelliteEntityFeature.ANNOUNCE | AssistSatelliteEntityFeature.START_CONVERSATION
    )

    def __init__(self, entry: KiwiConfigEntry, info: SatelliteInfo) -> None:
        """Bind the entity to one microphone of the hub."""
        super().__init__(entry, SATELLITE)
        self.satellite_id = info.id
        self._present = True
        self._added = False  # the hub's events may name it before Home Assistant added it
        self._reply = ""  # what Kiwi said in this satellite's turn
        identifier = satellite_identifier(entry, info.id)
        self._attr_unique_id = identifier
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, identifier)},
            name=info.name,
            manufacturer=MANUFACTURER,
            model="Host microphone" if info.kind == "host" else "Browser microphone",
            via_device=(DOMAIN, hub_identifier(entry)),
        )

    async def async_added_to_hass(self) -> None:
        """From now on the entity can write its state."""
        await super().async_added_to_hass()
        self._added = True

    @property
    def available(self) -> bool:
        """Unavailable while disconnected, or while the microphone is gone (a closed tab)."""
        return super().available and self._present

    @callback
    def set_present(self, present: bool) -> None:
        """The hub said whether this microphone is connected."""
        if present != self._present:
            self._present = present
            if self._added:
                self.async_write_ha_state()

    @callback
    def mirror(self, hub_state: str) -> None:
        """Follow the hub's turn on this microphone (STATE_CHANGED with its session)."""
        if not self._added:
            return
        if hub_state == "LISTENING":
            self._reply = ""
        if hub_state == "IDLE":
            self._play_reply_elsewhere()
            self.tts_response_finished()
        elif (event_type := _STATE_EVENTS.get(hub_state)) is not None:
            self._internal_on_pipeline_event(PipelineEvent(event_type))

    @callback
    def reply_said(self, text: str) -> None:
        """Kiwi finished saying a reply in this satellite's turn (TTS_FINISHED)."""
        self._reply = text

    @property
    def _reply_player(self) -> str | None:
        return reply_player(self.hass, self.coordinator.config_entry.entry_id, self.satellite_id)

    @callback
    def _play_reply_elsewhere(self) -> None:
        """The turn is over: with a media player chosen, Home Assistant says the reply there
        (the hub kept it off this microphone's speaker)."""
        reply, self._reply = self._reply, ""
        if not reply or (player := self._reply_player) is None:
            return
        self.coordinator.config_entry.async_create_background_task(
            self.hass, self._async_say_elsewhere(reply, player), name=f"{self.entity_id} reply"
        )

    async def _async_say_elsewhere(self, text: str, player: str) -> None:
        try:
            await async_say_on_media_players(self.hass, text, [player])
        except HomeAssistantError as err:
            LOGGER.warning("%s could not play its reply on %s: %s", self.entity_id, player, err)

    @callback
    def on_pipeline_event(self, event: PipelineEvent) -> None:
        """Nothing more to do: the hub runs the pipeline, the state follows it."""

    @callback
    def async_get_configuration(self) -> AssistSatelliteConfiguration:
        """The hub's wake word: one, shared by all of Kiwi's microphones."""
        wake_word = str(self.coordinator.data.config.raw.get("wake_word") or "")
        return AssistSatelliteConfiguration(
            available_wake_words=[
                AssistSatelliteWakeWord(
                    id=wake_word, wake_word=wake_word.replace("_", " "), trained_languages=[]
                )
            ]
            if wake_word
            else [],
            active_wake_words=[wake_word] if wake_word else [],
            max_active_wake_words=1,
        )

    async def async_set_configuration(self, config: AssistSatelliteConfiguration) -> None:
        """The wake word is the hub's setting (the Wake word select), not a satellite's."""
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="satellite_config")

    async def async_announce(self, announcement: AssistSatelliteAnnouncement) -> None:
        """Say the announcement on this microphone's speaker; returns once it was said."""
        await self._async_say(announcement)

    async def async_start_conversation(
        self, start_announcement: AssistSatelliteAnnouncement
    ) -> None:
        """Say the start message, then listen here without a wake word.

        For `ask_question` (the base class waits for an answer) the hub only transcribes
        the answer; otherwise what the user says is a Kiwi turn, answered by Kiwi."""
        await self._async_say(start_announcement)
        answer_only = self._ask_question_future is not None
        assert self.platform.config_entry is not None
        self.platform.config_entry.async_create_background_task(
            self.hass, self._async_listen(answer_only), name=f"{self.entity_id} listen"
        )

    async def _async_say(self, announcement: AssistSatelliteAnnouncement) -> None:
        if not announcement.message:
            # Kiwi speaks text with its own voice; a bare media file has no text to say.
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="satellite_needs_message"
            )
        if (player := self._reply_player) is not None:
            # This satellite's voice is a media player: Home Assistant says it there.
            await async_say_on_media_players(self.hass, announcement.message, [player])
            return
        with translated_hub_errors(
            self.hass,
            self.coordinator.config_entry,
            failed_key="command_failed",
            not_found_key="not_found",
            placeholders={"entity_id": self.entity_id},
        ):
            await self.coordinator.client.tts_test(
                announcement.message, target=self.satellite_id, wait=True
            )

    async def _async_listen(self, answer_only: bool) -> None:
        """Have the hub listen here; an answer goes to the question that waits for it."""
        text: str | None = None
        try:
            heard = await self.coordinator.client.satellite_listen(
                self.satellite_id, answer_only=answer_only
            )
            text = heard.text
        except KiwiError as err:
            LOGGER.warning("%s could not listen: %s", self.entity_id, err)
        if answer_only:
            # The base class takes the answer from the pipeline's STT result, as if Home
            # Assistant's own pipeline had transcribed it; RUN_END settles "no answer".
            if text:
                self._internal_on_pipeline_event(
                    PipelineEvent(PipelineEventType.STT_END, {"stt_output": {"text": text}})
                )
            self._internal_on_pipeline_event(PipelineEvent(PipelineEventType.RUN_END))
