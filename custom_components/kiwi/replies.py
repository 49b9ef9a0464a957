"""Replies where the user is: Kiwi's words on a Home Assistant media player.

Home Assistant's own TTS says the text (the preferred Assist pipeline's engine, as a TTS media
source), and `media_player.play_media` plays it as an announcement. Used by `kiwi.speak` with
`media_player_entity_id`, and by satellites whose replies go to a chosen media player (the
satellite's *Replies on* select).
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import tts
from homeassistant.components.assist_pipeline.pipeline import async_get_pipeline
from homeassistant.components.media_player.const import (
    ATTR_MEDIA_ANNOUNCE,
    ATTR_MEDIA_CONTENT_ID,
    ATTR_MEDIA_CONTENT_TYPE,
    SERVICE_PLAY_MEDIA,
    MediaType,
)
from homeassistant.components.media_player.const import DOMAIN as MEDIA_PLAYER_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError

from .const import DOMAIN


def tts_media_source_id(hass: HomeAssistant, text: str) -> str:
    """The TTS media source that says `text` with the preferred pipeline's engine and voice."""
    pipeline = async_get_pipeline(hass)
    engine = tts.async_resolve_engine(hass, pipeline.tts_engine)
    if engine is None:
        raise HomeAssistantError(translation_domain=DOMAIN, translation_key="no_tts_engine")
    options: dict[str, Any] = {}
    if pipeline.tts_voice:
        options[tts.ATTR_VOICE] = pipeline.tts_voice
    return tts.generate_media_source_id(
        hass, text, engine=engine, language=pipeline.tts_language, options=options or None
    )


async def async_say_on_media_players(
    hass: HomeAssistant, text: str, players: list[str]
) -> list[str]:
    """Say `text` on `players` (an announcement: music resumes after); returns them."""
    await hass.services.async_call(
        MEDIA_PLAYER_DOMAIN,
        SERVICE_PLAY_MEDIA,
        {
            ATTR_ENTITY_ID: players,
            ATTR_MEDIA_CONTENT_ID: tts_media_source_id(hass, text),
            ATTR_MEDIA_CONTENT_TYPE: MediaType.MUSIC,
            ATTR_MEDIA_ANNOUNCE: True,
        },
        blocking=True,
    )
    return players
