"""Settings and language."""

from __future__ import annotations

from typing import cast

import voluptuous as vol

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import from_invalid
from kiwi_voice.hub.protocol import (
    LANGUAGES,
    ConfigResponse,
    ConfigUpdateResponse,
    LanguageRequest,
    LanguageResponse,
    LanguagesResponse,
    SettingsPatch,
)

TAG = "config"


async def get_config(call: Call) -> ConfigResponse:
    secrets = call.ctx.secrets
    config = cast(ConfigResponse, dict(call.ctx.settings.current()))
    config["secrets_configured"] = {
        "anthropic_api_key": secrets.anthropic_api_key is not None,
        "telegram_bot_token": secrets.telegram_bot_token is not None,
        "homeassistant_token": secrets.homeassistant_token is not None,
    }
    config["wake_word_engine_active"] = call.ctx.pipeline_status.wake_engine
    config["tts_voices"] = await call.ctx.tts.installed_voices()
    return config


async def patch_config(call: Call) -> ConfigUpdateResponse:
    try:
        changed = call.ctx.settings.update(call.body)
    except vol.Invalid as err:  # already validated by the endpoint; kept for direct callers
        raise from_invalid(err) from err
    return {"updated": changed}


async def get_languages(call: Call) -> LanguagesResponse:
    return {
        "current": call.ctx.settings.get("language"),
        "available": list(LANGUAGES),  # type: ignore[typeddict-item]
    }


async def post_language(call: Call) -> LanguageResponse:
    call.ctx.settings.update({"language": call.body["language"]})
    return {"language": call.ctx.settings.get("language")}


ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/config",
        handler=get_config,
        summary="Current settings (no secrets)",
        tag=TAG,
        response=ConfigResponse,
    ),
    Endpoint(
        method="PATCH",
        path="/api/config",
        handler=patch_config,
        summary="Change settings at run time (validated, persisted); null resets a field",
        tag=TAG,
        request=SettingsPatch,
        response=ConfigUpdateResponse,
    ),
    Endpoint(
        method="GET",
        path="/api/languages",
        handler=get_languages,
        summary="Current language and the 15 available",
        tag=TAG,
        response=LanguagesResponse,
    ),
    Endpoint(
        method="POST",
        path="/api/language",
        handler=post_language,
        summary="Switch language at run time",
        tag=TAG,
        request=LanguageRequest,
        response=LanguageResponse,
    ),
)
