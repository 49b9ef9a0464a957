"""Say which models Kiwi will look for, and which ones a service reports as missing."""

from __future__ import annotations

import logging

from wyoming.info import Info

from .settings import LauncherSettings

_LOGGER = logging.getLogger(__name__)


def log_model_roots(settings: LauncherSettings) -> None:
    roots = ", ".join(str(p) for p in settings.model_roots)
    _LOGGER.info("Models are looked up in %s; missing ones download on first use", roots)


def missing_artifacts(info: Info) -> list[str]:
    """Names of the programs, models, voices and wake words a service says are not installed."""
    missing: list[str] = []
    for program in (*info.asr, *info.tts, *info.wake):
        if not program.installed:
            missing.append(program.name)
        items = getattr(program, "models", None) or getattr(program, "voices", None) or []
        missing.extend(item.name for item in items if not item.installed)
    return missing
