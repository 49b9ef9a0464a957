"""Souls: list, current, switch."""

from __future__ import annotations

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ApiError
from kiwi_voice.hub.protocol import SoulDetail, SoulsResponse, SoulSwitchRequest, SoulSwitchResponse
from kiwi_voice.hub.souls import SoulNotAllowed, UnknownSoul

TAG = "souls"


async def get_souls(call: Call) -> SoulsResponse:
    active = call.ctx.souls
    return {
        "souls": [
            {
                "id": soul.id,
                "name": soul.name,
                "description": soul.description,
                "nsfw": soul.nsfw,
                "model": active.model_of(soul),
                "source": soul.source,
            }
            for soul in call.ctx.soul_registry.all()
        ],
        "current": active.current().id,
    }


async def get_current_soul(call: Call) -> SoulDetail:
    active = call.ctx.souls
    soul = active.current()
    return {
        "id": soul.id,
        "name": soul.name,
        "description": soul.description,
        "nsfw": soul.nsfw,
        "model": active.model_of(soul),
        "voice": soul.voice,
        "speed": soul.speed,
        "source": soul.source,
    }


async def post_soul(call: Call) -> SoulSwitchResponse:
    active = call.ctx.souls
    try:
        soul = active.switch(call.body["soul"])
    except UnknownSoul as err:
        raise ApiError(404, err.code, str(err)) from err
    except SoulNotAllowed as err:
        raise ApiError(403, err.code, str(err)) from err
    return {"soul": soul.id, "name": soul.name, "nsfw": soul.nsfw, "model": active.model_of(soul)}


ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/souls",
        handler=get_souls,
        summary="All personalities (built-in and the user's)",
        tag=TAG,
        response=SoulsResponse,
    ),
    Endpoint(
        method="GET",
        path="/api/soul/current",
        handler=get_current_soul,
        summary="The active personality",
        tag=TAG,
        response=SoulDetail,
    ),
    Endpoint(
        method="POST",
        path="/api/soul",
        handler=post_soul,
        summary="Switch personality (NSFW souls need allow_nsfw)",
        tag=TAG,
        request=SoulSwitchRequest,
        response=SoulSwitchResponse,
        errors=(403, 404),
    ),
)
