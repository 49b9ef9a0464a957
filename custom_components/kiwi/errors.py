"""One conversion of the hub client's errors into translated Home Assistant errors.

Entity commands (`kiwi_command` in entity.py), actions (services.py) and the conversation agent
turn a failed hub request into an error with `hub_error`, so the same failure reads the same
everywhere and a refused token always starts re-authentication. Setting the entry up and
refreshing it use `hub_setup_error`, which raises what Home Assistant's setup expects instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryNotReady,
    HomeAssistantError,
    ServiceValidationError,
)
from homeassistant.helpers.update_coordinator import UpdateFailed

from .api import KiwiAuthenticationError, KiwiConnectionError, KiwiError, KiwiNotFoundError
from .const import DOMAIN

# The hub's code for "nothing can play audio" (no browser microphone, no host speaker).
NO_AUDIO_OUTPUT = "no_audio_output"


def hub_error(
    hass: HomeAssistant,
    entry: ConfigEntry[Any],  # the entry to re-authenticate
    err: KiwiError,
    *,
    failed_key: str,
    not_found_key: str | None = None,
    unreachable_key: str | None = None,
    placeholders: Mapping[str, str] | None = None,
) -> HomeAssistantError:
    """The translated error that `err` becomes.

    A refused token is `invalid_auth` and starts re-authentication. A 404 is a
    `ServiceValidationError` under `not_found_key` (the caller named something the hub does not
    know); a hub out of reach uses `unreachable_key`; anything else `failed_key`. Every message
    may use the hub's reason as `{error}` beside `placeholders`.
    """
    if isinstance(err, KiwiAuthenticationError):
        entry.async_start_reauth(hass)
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="invalid_auth")
    values = {**(placeholders or {}), "error": str(err)}
    if isinstance(err, KiwiNotFoundError) and not_found_key is not None:
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=not_found_key,
            translation_placeholders=values,
        )
    key = failed_key
    if isinstance(err, KiwiConnectionError) and unreachable_key is not None:
        key = unreachable_key
    elif err.code == NO_AUDIO_OUTPUT:  # the same words wherever speaking was asked for
        key = NO_AUDIO_OUTPUT
    return HomeAssistantError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=values
    )


@contextmanager
def translated_hub_errors(
    hass: HomeAssistant,
    entry: ConfigEntry[Any],  # the entry to re-authenticate
    *,
    failed_key: str,
    not_found_key: str | None = None,
    placeholders: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Raise `hub_error(...)` for a KiwiError raised inside the block."""
    try:
        yield
    except KiwiError as err:
        raise hub_error(
            hass,
            entry,
            err,
            failed_key=failed_key,
            not_found_key=not_found_key,
            placeholders=placeholders,
        ) from err


def hub_setup_error(
    err: KiwiError, url: str, retry: type[ConfigEntryNotReady] | type[UpdateFailed]
) -> HomeAssistantError:
    """What setting up (`ConfigEntryNotReady`) or refreshing (`UpdateFailed`) the entry raises
    for `err`: a refused token is `ConfigEntryAuthFailed` (Home Assistant starts
    re-authentication), anything else `retry` under `cannot_connect`."""
    if isinstance(err, KiwiAuthenticationError):
        return ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="invalid_auth")
    return retry(
        translation_domain=DOMAIN,
        translation_key="cannot_connect",
        translation_placeholders={"url": url, "error": str(err)},
    )
