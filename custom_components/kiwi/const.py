"""Constants of the Kiwi integration."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Final

DOMAIN: Final = "kiwi"
LOGGER = logging.getLogger(__package__)

DEFAULT_PORT: Final = 7789
DEFAULT_NAME: Final = "Kiwi"
MANUFACTURER: Final = "Kiwi Voice"

CONF_SPEAKER_PERSONS: Final = "speaker_persons"

# Reconnect delays of the event stream: quick at first (a hub restart takes seconds),
# then backing off so an unplugged hub is not hammered.
RECONNECT_INITIAL_DELAY: Final = 1.0
RECONNECT_MAX_DELAY: Final = 60.0
# How long the hub may stay unreachable before a repair issue says so.
UNREACHABLE_ISSUE_DELAY: Final = timedelta(minutes=15)

# Fired on the Home Assistant bus for every hub event the integration forwards.
KIWI_EVENT: Final = "kiwi_event"

# Hub events not forwarded to Home Assistant's bus: one frame per language-model token
# would flood it (LLM_COMPLETE carries the whole answer).
IGNORED_EVENTS: Final = frozenset({"LLM_TOKEN"})

# Hub events that device triggers offer ("when Kiwi hears its wake word").
DEVICE_TRIGGER_EVENTS: Final = ("WAKE_WORD_DETECTED", "SPEAKER_IDENTIFIED")

# Profile of Kiwi's own TTS voice (echo detection): not a person, never a device.
SELF_SPEAKER_ID: Final = "self"
