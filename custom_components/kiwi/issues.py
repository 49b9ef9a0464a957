"""Repair issues: the hub unreachable for long, a service of the hub without its model, a
setting the hub needs filled.

A refused token is not an issue here: it starts the re-authentication flow instead.
Issues are per config entry, so one hub's repair never clears another's.

A setting issue comes from an ERROR that names a `setting` (an Anthropic API key for open
questions, Home Assistant's token, a voice for the language, Telegram owner ids): it is raised
once for that setting and closes when the setting changes (CONFIG_CHANGED names it) or, for a
secret, when the hub reports it configured (a secret is set in the add-on options, and the hub
restarts to read it).
"""

from __future__ import annotations

from homeassistant.core import CALLBACK_TYPE, HassJob, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later

from . import const
from .api import HubConfig, KiwiEvent
from .const import DOMAIN

ISSUE_UNREACHABLE = "hub_unreachable"
ISSUE_MODELS_MISSING = "models_missing"
MODEL_MISSING_CODE = "model_missing"
ISSUE_SETTING = "setting_needed"
# Settings whose issue also closes when another setting changes (a voice follows the language).
RELATED_SETTINGS = {"tts_voice": ("language", "tts_voice")}
# The event that shows a service works (again), by the ERROR `source` name of that service.
SERVICE_SUCCESS_EVENTS = {
    "WAKE_WORD_DETECTED": "wake",
    "SPEECH_RECOGNIZED": "stt",
    "SPEAKER_IDENTIFIED": "speaker",
    "TTS_STARTED": "tts",
}


class KiwiIssues:
    """The repair issues of one config entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str, url: str) -> None:
        """Issues of the entry `entry_id`, whose hub is at `url`."""
        self._hass = hass
        self._entry_id = entry_id
        self._url = url
        self._cancel_unreachable: CALLBACK_TYPE | None = None

    def _issue_id(self, issue: str) -> str:
        return f"{issue}_{self._entry_id}"

    @callback
    def hub_lost(self) -> None:
        """Start the clock: unreachable for UNREACHABLE_ISSUE_DELAY raises the issue."""
        self.stop_clock()
        self._cancel_unreachable = async_call_later(
            self._hass,
            const.UNREACHABLE_ISSUE_DELAY,
            HassJob(self._raise_unreachable, cancel_on_shutdown=True),
        )

    @callback
    def hub_back(self) -> None:
        """Connected again: no clock, no issue."""
        self.stop_clock()
        ir.async_delete_issue(self._hass, DOMAIN, self._issue_id(ISSUE_UNREACHABLE))

    @callback
    def stop_clock(self) -> None:
        """Forget the unreachable clock (reauth, unload)."""
        if self._cancel_unreachable is not None:
            self._cancel_unreachable()
            self._cancel_unreachable = None

    @callback
    def _raise_unreachable(self, _now: object) -> None:
        self._cancel_unreachable = None
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            self._issue_id(ISSUE_UNREACHABLE),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_UNREACHABLE,
            translation_placeholders={
                "url": self._url,
                "minutes": str(int(const.UNREACHABLE_ISSUE_DELAY.total_seconds() // 60)),
            },
        )

    @callback
    def track_models(self, event: KiwiEvent) -> None:
        """ERROR with code model_missing raises the issue of that service; the service
        working again (its success event) closes it."""
        data = event.data
        if event.event == "ERROR" and data.get("code") == MODEL_MISSING_CODE:
            service = str(data.get("source") or "hub")
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                self._issue_id(f"{ISSUE_MODELS_MISSING}_{service}"),
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_MODELS_MISSING,
                translation_placeholders={
                    "service": service,
                    "message": str(data.get("message") or ""),
                },
            )
        elif (working := SERVICE_SUCCESS_EVENTS.get(event.event)) is not None:
            ir.async_delete_issue(
                self._hass, DOMAIN, self._issue_id(f"{ISSUE_MODELS_MISSING}_{working}")
            )

    @callback
    def track_settings(self, event: KiwiEvent) -> None:
        """An ERROR naming a setting raises its issue; CONFIG_CHANGED of it closes it."""
        data = event.data
        setting = data.get("setting")
        if event.event == "ERROR" and isinstance(setting, str) and setting:
            if data.get("code") == MODEL_MISSING_CODE:
                return  # the service's models_missing issue says it
            ir.async_create_issue(
                self._hass,
                DOMAIN,
                self._issue_id(f"{ISSUE_SETTING}_{setting}"),
                is_fixable=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_SETTING,
                translation_placeholders={
                    "setting": setting,
                    "message": str(data.get("message") or ""),
                },
            )
        elif event.event == "CONFIG_CHANGED" and isinstance(data.get("updated"), dict):
            changed = set(data["updated"])
            for name, related in RELATED_SETTINGS.items():
                if changed & set(related):
                    changed.add(name)
            for name in changed:
                self._close_setting(name)

    @callback
    def check_config(self, config: HubConfig) -> None:
        """Secrets the hub now has close their issues."""
        for secret, configured in config.secrets_configured.items():
            if configured:
                self._close_setting(secret)

    @callback
    def _close_setting(self, setting: str) -> None:
        ir.async_delete_issue(self._hass, DOMAIN, self._issue_id(f"{ISSUE_SETTING}_{setting}"))
