"""Where Kiwi keeps its data and which ports it listens on, read from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# Where the Supervisor is (one place for discovery and the hub's Core API proxy).
from kiwi_voice.common.supervisor import core_api_url, supervisor_url

# The one place that names each port's variable and default; DOCS.md and config.yaml agree with it
# (tests/addon/test_packaging_files.py checks).
PORT_VARIABLES: dict[str, tuple[str, int]] = {
    "hub": ("KIWI_PORT", 7789),
    "stt": ("KIWI_STT_PORT", 10300),
    "tts": ("KIWI_TTS_PORT", 10200),
    "wake": ("KIWI_WAKE_PORT", 10400),
    "speaker": ("KIWI_SPEAKER_PORT", 10500),
    "combined": ("KIWI_WYOMING_PORT", 10700),
}

DEFAULT_DATA_DIR = Path(".kiwi")


__all__ = [
    "LauncherSettings",
    "SettingsError",
    "core_api_url",
    "default_ports",
    "settings_from_environ",
    "supervisor_url",
]


class SettingsError(ValueError):
    """An environment variable holds something Kiwi cannot use."""


def default_ports() -> dict[str, int]:
    return {name: default for name, (_variable, default) in PORT_VARIABLES.items()}


@dataclass(frozen=True, kw_only=True)
class LauncherSettings:
    """Everything the launcher takes from the environment rather than from the user's options."""

    data_dir: Path = DEFAULT_DATA_DIR
    # Model folders searched before `<data_dir>/models` (the add-on adds /config/models, where a
    # user drops custom wake words and voices).
    extra_model_roots: tuple[Path, ...] = ()
    # The default models installed from their pinned packages (kiwi_voice.model_pack): searched
    # last, so anything the user adds or downloads wins. `make run` passes the checkout's
    # `models/`, the add-on image its own copy.
    bundled_models: Path | None = None
    # Where the services listen. Inside the add-on container every interface, so Home Assistant
    # reaches them over the Supervisor's network; on a developer machine only this one.
    bind_host: str = "127.0.0.1"
    ports: Mapping[str, int] = field(default_factory=default_ports)

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def model_roots(self) -> tuple[Path, ...]:
        """Model folders in the order the services search them."""
        bundled = () if self.bundled_models is None else (self.bundled_models,)
        return (*self.extra_model_roots, self.models_dir, *bundled)

    @property
    def token_file(self) -> Path:
        return self.data_dir / "api_token"

    def port(self, process: str) -> int:
        return self.ports[process]


def settings_from_environ(environ: Mapping[str, str] | None = None) -> LauncherSettings:
    """Read KIWI_DATA_DIR, KIWI_MODELS_PATH, KIWI_BUNDLED_MODELS, KIWI_BIND_HOST and the ports."""
    env = os.environ if environ is None else environ
    ports = {
        name: _port(env, variable, default) for name, (variable, default) in PORT_VARIABLES.items()
    }
    taken: dict[int, str] = {}
    for name, port in ports.items():
        if port in taken:
            raise SettingsError(f"{name} and {taken[port]} would both listen on port {port}")
        taken[port] = name
    extra = tuple(Path(p) for p in env.get("KIWI_MODELS_PATH", "").split(os.pathsep) if p)
    bundled = env.get("KIWI_BUNDLED_MODELS", "").strip()
    return LauncherSettings(
        data_dir=Path(env.get("KIWI_DATA_DIR") or DEFAULT_DATA_DIR),
        extra_model_roots=extra,
        bundled_models=Path(bundled) if bundled else None,
        bind_host=env.get("KIWI_BIND_HOST") or "127.0.0.1",
        ports=ports,
    )


def _port(env: Mapping[str, str], variable: str, default: int) -> int:
    raw = env.get(variable)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise SettingsError(f"{variable}={raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise SettingsError(f"{variable}={port} is outside 1-65535")
    return port
