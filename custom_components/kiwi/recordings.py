"""Recordings for speaker enrollment: a file Home Assistant may read, or a URL it downloads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import DOMAIN

# The hub takes WAV bodies up to 10 MiB (about five minutes of 16 kHz mono).
MAX_RECORDING_BYTES = 10 * 1024 * 1024
DOWNLOAD_TIMEOUT = 30.0


async def async_read_allowed_file(hass: HomeAssistant, path: str) -> bytes:
    """Read a recording from a folder the user allowed (allowlist_external_dirs)."""
    if not hass.config.is_allowed_path(path):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="path_not_allowed",
            translation_placeholders={"path": path},
        )
    try:
        return await hass.async_add_executor_job(_read_limited, Path(path))
    except OSError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="recording_unreadable",
            translation_placeholders={"source": path, "error": str(err)},
        ) from err


def _read_limited(path: Path) -> bytes:
    with path.open("rb") as file:
        data = file.read(MAX_RECORDING_BYTES + 1)
    if len(data) > MAX_RECORDING_BYTES:
        raise OSError(f"larger than {MAX_RECORDING_BYTES} bytes")
    return data


async def async_download(hass: HomeAssistant, url: str) -> bytes:
    """Download a recording with Home Assistant's shared session."""
    session = async_get_clientsession(hass)
    data = bytearray()
    try:
        async with asyncio.timeout(DOWNLOAD_TIMEOUT), session.get(url) as response:
            response.raise_for_status()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > MAX_RECORDING_BYTES:
                    raise ValueError(f"larger than {MAX_RECORDING_BYTES} bytes")
    except (TimeoutError, aiohttp.ClientError, ValueError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="recording_unreadable",
            translation_placeholders={"source": url, "error": str(err) or type(err).__name__},
        ) from err
    return bytes(data)
