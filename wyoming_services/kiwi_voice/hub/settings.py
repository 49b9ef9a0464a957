"""Run-time settings: defaults, overridden by the environment, overridden by what the owner changed.

Layers, lowest first:
1. `DEFAULTS` below;
2. environment variables `KIWI_<FIELD>` (the launcher passes the add-on's options this way) and a
   few aliases (`KIWI_ANTHROPIC_MODEL`, `KIWI_HA_URL`);
3. changes made through the API (PATCH /api/config, POST /api/language), persisted in kiwi.db.
   Patching a field to null removes the change and the field falls back to layers 1-2.

An option the user changes wins over a run-time change of the same setting: the values layer 2
had at the last start are kept in kiwi.db, and a setting whose environment value differs now
(the add-on option was edited, or the variable set or unset) drops its run-time change. A
run-time change lasts, across restarts, until then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, cast

import voluptuous as vol

from .protocol import Settings
from .shapes import field_names, validator
from .store import Store

_LOGGER = logging.getLogger(__name__)
_NAMESPACE = "settings"
# The environment's values at the last start (see the module's docstring).
_OPTIONS_NAMESPACE = "settings_options"
_OPTIONS_KEY = "environment"

DEFAULTS: Settings = {
    "language": "en",
    "tts_provider": "piper",
    "tts_voice": "",
    "stt_model": "base",
    "stt_device": "cpu",
    "wake_word": "hey_jarvis",  # docs/wake-word.md
    "wake_word_engine": "auto",
    "wake_speaker_gate": False,
    "allow_nsfw": False,
    "llm_model": "claude-sonnet-4-5",
    "guest_policy": "approve",
    "unknown_speaker_policy": "deny",
    "friend_policy": "allow",
    "approval_timeout_seconds": 120.0,
    "approvals_via_api": False,
    "sensitive_actions": "lock,alarm_control_panel,cover,*garage*",
    "auto_learn_guests": False,
    "auto_learn_samples": 3,
    "auto_learn_min_confidence": 0.75,
    "homeassistant_url": "",
    "vad_silence_seconds": 0.8,
    "vad_end_on_sentence": True,
    "max_utterance_seconds": 15.0,
    "listen_timeout_seconds": 6.0,
    "context_idle_seconds": 300.0,
}
ENV_ALIASES = {
    "KIWI_ANTHROPIC_MODEL": "llm_model",
    "KIWI_HA_URL": "homeassistant_url",
}
FIELDS = field_names(Settings)
_VALIDATE_PATCH = validator(Settings, partial=True, nullable=True)
_VALIDATE_FULL = validator(Settings)

ChangeListener = Callable[[dict[str, Any]], None]


def defaults_from_environ(environ: Mapping[str, str]) -> Settings:
    """DEFAULTS with what the environment sets; a bad value is logged and ignored, never fatal."""
    return cast(Settings, _VALIDATE_FULL({**DEFAULTS, **environment_values(environ)}))


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment sets (valid values only)."""
    values: dict[str, Any] = {}
    candidates = {f"KIWI_{name.upper()}": name for name in FIELDS} | ENV_ALIASES
    for variable, name in candidates.items():
        raw = environ.get(variable)
        if raw is None:
            continue
        try:
            value = _coerce(raw, DEFAULTS[name])  # type: ignore[literal-required]
            _VALIDATE_PATCH({name: value})
        except (ValueError, vol.Invalid) as err:
            _LOGGER.warning("Ignoring %s=%r: %s", variable, raw, err)
            continue
        values[name] = value
    return values


def _coerce(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, int):
        return int(raw)
    return raw.strip()


class SettingsStore:
    def __init__(
        self, store: Store, defaults: Settings, environment: Mapping[str, Any] | None = None
    ) -> None:
        """`environment`: what the environment set (`environment_values`); a setting whose
        environment value changed since the last start loses its run-time change."""
        self._store = store
        self._defaults = defaults
        self._overrides = self._load_overrides()
        self._listeners: list[ChangeListener] = []
        if environment is not None:
            self._follow_changed_options(dict(environment))

    def _follow_changed_options(self, environment: dict[str, Any]) -> None:
        recorded = self._store.read_namespace(_OPTIONS_NAMESPACE).get(_OPTIONS_KEY)
        if isinstance(recorded, dict):
            changed = [
                name
                for name in FIELDS
                if name in self._overrides and recorded.get(name) != environment.get(name)
            ]
            for name in changed:
                _LOGGER.info(
                    "The option %s changed (now %r): it replaces the run-time value %r",
                    name,
                    environment.get(name, self._defaults[name]),  # type: ignore[literal-required]
                    self._overrides[name],
                )
                del self._overrides[name]
            if changed:
                self._store.write_namespace(_NAMESPACE, {}, changed)
        # A database from before this record existed keeps its run-time values once.
        if recorded != environment:
            self._store.write_namespace(_OPTIONS_NAMESPACE, {_OPTIONS_KEY: environment})

    def _load_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        for name, value in self._store.read_namespace(_NAMESPACE).items():
            try:
                _VALIDATE_PATCH({name: value})
            except vol.Invalid as err:
                # A setting an older or newer Kiwi wrote; the default serves instead.
                _LOGGER.warning("Ignoring stored setting %s=%r: %s", name, value, err)
                continue
            overrides[name] = value
        return overrides

    def current(self) -> Settings:
        return cast(Settings, {**self._defaults, **self._overrides})

    def get(self, name: str) -> Any:
        return self.current()[name]  # type: ignore[literal-required]

    def changed_at_run_time(self, name: str) -> bool:
        """Whether `name` has a run-time change (layer 3) rather than its default."""
        return name in self._overrides

    def preview(self, patch: Mapping[str, Any]) -> tuple[dict[str, Any], Settings]:
        """What `update(patch)` would change, and the settings after it; nothing is written.

        Raises voluptuous.Invalid like `update`."""
        _patch, overrides, changed = self._apply(patch)
        return changed, cast(Settings, {**self._defaults, **overrides})

    def _apply(
        self, patch: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The validated patch, the run-time changes after it, and what it changes."""
        patch = _VALIDATE_PATCH(dict(patch))
        before = self.current()
        overrides = dict(self._overrides)
        for name, value in patch.items():
            if value is None:
                overrides.pop(name, None)
            else:
                overrides[name] = value
        after = cast(Settings, {**self._defaults, **overrides})
        changed = {name: after[name] for name in FIELDS if after[name] != before[name]}  # type: ignore[literal-required]
        return patch, overrides, changed

    def update(self, patch: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a validated patch atomically; returns {field: new value} for what changed.

        Raises voluptuous.Invalid naming the field when the patch is not valid; nothing is
        written then.
        """
        patch, overrides, changed = self._apply(patch)
        set_values = {k: v for k, v in patch.items() if v is not None}
        removed = [k for k, v in patch.items() if v is None]
        if set_values or removed:
            self._store.write_namespace(_NAMESPACE, set_values, removed)
        self._overrides = overrides
        if changed:
            for listener in list(self._listeners):
                try:
                    listener(dict(changed))
                except Exception:
                    _LOGGER.exception("Settings listener failed")
        return changed

    def on_change(self, listener: ChangeListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)
