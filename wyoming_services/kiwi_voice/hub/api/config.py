"""Settings and language.

A change takes effect before it is answered: a new Whisper model or device is running
(stt_models.py), or the PATCH fails with an error that names the setting and nothing changes.
The seed contract's `tts_qwen_backend` and `tts_default_style` are accepted and answered under
`ignored` (not settings here); a language no installed voice speaks is answered with a notice.
"""

from __future__ import annotations

from typing import Any, cast

import voluptuous as vol

from kiwi_voice.hub.context import HubContext
from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ApiError, ServiceError, ServiceUnavailable, from_invalid
from kiwi_voice.hub.event_payloads import EventType, error
from kiwi_voice.hub.protocol import (
    CONTRACT_ONLY_SETTINGS,
    LANGUAGE_NAMES,
    LANGUAGES,
    ConfigResponse,
    ConfigUpdateResponse,
    LanguageRequest,
    LanguageResponse,
    LanguagesResponse,
    SettingNotice,
    Settings,
    SettingsPatch,
)
from kiwi_voice.hub.stt_models import STT_SETTINGS, switch_failure_message

TAG = "config"
NO_VOICE_FOR_LANGUAGE = "no_voice_for_language"


async def get_config(call: Call) -> ConfigResponse:
    secrets = call.ctx.secrets
    config = cast(ConfigResponse, dict(call.ctx.settings.current()))
    config["tts_qwen_backend"] = "none"
    config["secrets_configured"] = {
        "anthropic_api_key": secrets.anthropic_api_key is not None,
        "telegram_bot_token": secrets.telegram_bot_token is not None,
        "homeassistant_token": secrets.homeassistant_token is not None,
    }
    config["wake_word_engine_active"] = call.ctx.pipeline_status.wake_engine
    config["tts_voices"] = await call.ctx.tts.installed_voices()
    return config


async def patch_config(call: Call) -> ConfigUpdateResponse:
    body = dict(call.body)
    ignored = {name: why for name, why in CONTRACT_ONLY_SETTINGS.items() if name in body}
    for name in ignored:
        del body[name]
    settings = call.ctx.settings
    try:
        changed, after = settings.preview(body)
    except vol.Invalid as err:  # already validated by the endpoint; kept for direct callers
        raise from_invalid(err) from err
    if any(name in changed for name in STT_SETTINGS):
        async with call.ctx.stt_models.switching:
            await _switch_stt(call.ctx, after)
            changed = settings.update(body)
    else:
        changed = settings.update(body)
    answer: ConfigUpdateResponse = {"updated": changed}
    if ignored:
        answer["ignored"] = ignored
    if notices := await voice_notices(call.ctx, changed):
        answer["notices"] = notices
    return answer


async def _switch_stt(ctx: HubContext, after: Settings) -> None:
    """Have kiwi-stt run the new model before the change is kept; ApiError if it cannot."""
    model, device = after["stt_model"], after["stt_device"]
    running = str(ctx.settings.get("stt_model"))
    field = "stt_model" if model != running else "stt_device"
    try:
        await ctx.stt_models.control.switch(model, device)
    except ServiceUnavailable as err:
        raise ApiError(503, err.code, f"{err.message}; {field} was not changed", field) from err
    except ServiceError as err:
        message = switch_failure_message(err, model, device, running)
        raise ApiError(409, err.code, message, field) from err


async def voice_notices(ctx: HubContext, changed: dict[str, Any]) -> list[SettingNotice]:
    """A notice (and an ERROR event) when no installed voice speaks the new language."""
    if "language" not in changed and "tts_voice" not in changed:
        return []
    language = str(ctx.settings.get("language"))
    preferred = ctx.souls.current().voice or str(ctx.settings.get("tts_voice")) or None
    choice = await ctx.voices.choose(preferred, language, fresh=True)
    if choice.speaks_language:
        return []
    name = LANGUAGE_NAMES.get(language, language)
    message = (
        f"No installed voice speaks {name} ({language}): Kiwi answers in {name} but speaks "
        f"with {preferred or 'the default voice'}. Add a piper voice of that language to a "
        "models folder (piper/) and choose it in tts_voice."
    )
    payload = error(message, "tts", NO_VOICE_FOR_LANGUAGE, setting="tts_voice")
    ctx.bus.publish(EventType.ERROR, payload, "tts")
    return [{"field": "language", "code": NO_VOICE_FOR_LANGUAGE, "message": message}]


async def get_languages(call: Call) -> LanguagesResponse:
    return {
        "current": call.ctx.settings.get("language"),
        "available": list(LANGUAGES),  # type: ignore[typeddict-item]
    }


async def post_language(call: Call) -> LanguageResponse:
    changed = call.ctx.settings.update({"language": call.body["language"]})
    answer: LanguageResponse = {"language": call.ctx.settings.get("language")}
    if notices := await voice_notices(call.ctx, changed):
        answer["notices"] = notices
    return answer


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
        summary=(
            "Change settings at run time (validated, persisted, in effect when answered); "
            "null resets a field"
        ),
        tag=TAG,
        request=SettingsPatch,
        response=ConfigUpdateResponse,
        errors=(409, 503),
        description=(
            "A new `stt_model` or `stt_device` is loaded by kiwi-stt before the answer "
            "(MODEL_LOADING / MODEL_LOADED events show progress); when it cannot be, the answer "
            "is 409 (`model_missing`, `engine_failed`) or 503 (kiwi-stt unreachable), the "
            "error's `field` names the setting, and nothing changes. `tts_qwen_backend` and "
            "`tts_default_style` (seed contract) are answered under `ignored`."
        ),
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
