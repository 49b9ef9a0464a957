"""Home Assistant: connection status and commands through its conversation API."""

from __future__ import annotations

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ApiError, ServiceError
from kiwi_voice.hub.homeassistant import CommandRefused, HomeAssistantNotConfigured
from kiwi_voice.hub.protocol import (
    HomeAssistantCommandRequest,
    HomeAssistantCommandResponse,
    HomeAssistantStatusResponse,
)

from .failures import service_failed

TAG = "homeassistant"


async def get_homeassistant_status(call: Call) -> HomeAssistantStatusResponse:
    client = call.ctx.homeassistant
    target = client.target()
    return {
        "enabled": target is not None,
        "connected": await client.connected(),
        "mode": target.mode if target is not None else "disabled",
    }


async def post_homeassistant_command(call: Call) -> HomeAssistantCommandResponse:
    language = call.body.get("language") or call.ctx.settings.get("language")
    try:
        return await call.ctx.homeassistant.process(call.body["text"], language)
    except HomeAssistantNotConfigured as err:
        raise ApiError(503, err.code, err.message) from err
    except CommandRefused as err:  # a sensitive command the owner did not approve
        raise ApiError(403, err.code, err.message) from err
    except ServiceError as err:
        raise service_failed(call.ctx.bus, err) from err


ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/homeassistant/status",
        handler=get_homeassistant_status,
        summary="Whether Home Assistant is configured and answering",
        tag=TAG,
        response=HomeAssistantStatusResponse,
    ),
    Endpoint(
        method="POST",
        path="/api/homeassistant/command",
        handler=post_homeassistant_command,
        summary="Send a command to Home Assistant's conversation API",
        tag=TAG,
        request=HomeAssistantCommandRequest,
        response=HomeAssistantCommandResponse,
        errors=(403, 502, 503),
        description=(
            "A command that would touch a sensitive action (`sensitive_actions`) waits for the "
            "owner's approval first; refused, it answers 403 `approval_denied`, "
            "`approval_expired` or `approval_unavailable` and nothing is sent to Home Assistant."
        ),
    ),
)
