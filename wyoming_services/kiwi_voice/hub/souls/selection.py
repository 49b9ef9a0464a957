"""Which soul is active: switching (with the owner's NSFW consent), persistence, SOUL_CHANGED.

The soul the hub starts with (`initial`: the add-on's `soul` option, `KIWI_SOUL`) and a switch at
run time (POST /api/soul, the integration's select) meet like the other settings do: the
switch is kept across restarts until the option changes; an option edited since the last
start (compared with the value kept in kiwi.db) wins over the switch.
"""

from __future__ import annotations

import logging

from kiwi_voice.hub.event_payloads import EventType, soul_changed
from kiwi_voice.hub.events import EventBus
from kiwi_voice.hub.settings import SettingsStore
from kiwi_voice.hub.store import Store

from .model import Soul
from .registry import SoulRegistry

_LOGGER = logging.getLogger(__name__)
_NAMESPACE = "hub"
_KEY = "active_soul"
_OPTION_KEY = "soul_option"  # `initial` at the last start


class SoulError(Exception):
    code = "soul_error"


class UnknownSoul(SoulError):
    code = "unknown_soul"


class SoulNotAllowed(SoulError):
    code = "nsfw_not_allowed"


class ActiveSoul:
    def __init__(
        self,
        registry: SoulRegistry,
        settings: SettingsStore,
        store: Store,
        bus: EventBus,
        initial: str,
    ) -> None:
        self._registry = registry
        self._settings = settings
        self._store = store
        self._bus = bus
        kept = store.read_namespace(_NAMESPACE)
        stored, option_before = kept.get(_KEY), kept.get(_OPTION_KEY)
        option_changed = isinstance(option_before, str) and option_before != initial
        if option_changed:
            _LOGGER.info(
                "The soul option changed to %r: it replaces the soul chosen at run time", initial
            )
        wanted = stored if isinstance(stored, str) and not option_changed else initial
        if option_before != initial:
            store.write_namespace(_NAMESPACE, {_OPTION_KEY: initial})
        soul = registry.get(wanted)
        if soul is None or not self._allowed(soul):
            if wanted != registry.default().id:
                _LOGGER.warning("Soul %r is unavailable or not allowed; using the default", wanted)
            soul = registry.default()
        self._current_id = soul.id
        if option_changed:
            store.write_namespace(_NAMESPACE, {_KEY: soul.id})
        settings.on_change(self._on_settings_changed)

    def _allowed(self, soul: Soul) -> bool:
        return not soul.nsfw or bool(self._settings.get("allow_nsfw"))

    def current(self) -> Soul:
        # The file may have been removed from the user folder since it was chosen.
        return self._registry.get(self._current_id) or self._registry.default()

    def for_speaker(self, soul_id: str | None) -> Soul:
        """The soul a speaker's profile names (speaker_links.py), else the active one; a named
        soul that is gone or not allowed (NSFW) falls back to the active one too."""
        soul = self._registry.get(soul_id) if soul_id else None
        if soul is None or not self._allowed(soul):
            return self.current()
        return soul

    def model_of(self, soul: Soul) -> str:
        """The Claude model really used for this soul."""
        return soul.model or str(self._settings.get("llm_model"))

    def switch(self, soul_id: str, source: str = "api") -> Soul:
        soul = self._registry.get(soul_id)
        if soul is None:
            raise UnknownSoul(f"no soul with id {soul_id!r}")
        if not self._allowed(soul):
            raise SoulNotAllowed(
                f"soul {soul_id!r} is marked NSFW; the owner must enable allow_nsfw first"
            )
        self._activate(soul, source)
        return soul

    def _activate(self, soul: Soul, source: str) -> None:
        self._store.write_namespace(_NAMESPACE, {_KEY: soul.id})
        changed = soul.id != self._current_id
        self._current_id = soul.id
        if changed:
            payload = soul_changed(soul.id, soul.name, self.model_of(soul), soul.nsfw)
            self._bus.publish(EventType.SOUL_CHANGED, payload, source)

    def _on_settings_changed(self, changed: dict[str, object]) -> None:
        if changed.get("allow_nsfw") is False and self.current().nsfw:
            _LOGGER.info("NSFW souls were disabled; switching to the default soul")
            self._activate(self._registry.default(), "souls")
