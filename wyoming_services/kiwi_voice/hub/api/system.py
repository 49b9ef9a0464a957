"""Health, status, the OpenAPI document, restart and shutdown."""

from __future__ import annotations

from typing import Any

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.protocol import (
    HealthResponse,
    RestartResponse,
    ShutdownResponse,
    StatusResponse,
)
from kiwi_voice.hub.state import AssistantState

TAG = "system"


async def get_health(call: Call) -> HealthResponse:
    return {"status": "ok", "version": call.ctx.version, "instance_id": call.ctx.instance_id}


async def get_status(call: Call) -> StatusResponse:
    ctx = call.ctx
    settings = ctx.settings.current()
    state = ctx.state.state
    return {
        "state": state.value,  # type: ignore[typeddict-item]
        "language": settings["language"],
        "tts_provider": settings["tts_provider"],
        "is_speaking": state == AssistantState.SPEAKING,
        "is_processing": state == AssistantState.PROCESSING,
        "is_running": ctx.lifecycle.running,
        "uptime_seconds": ctx.uptime_seconds,
        "active_speaker": ctx.presence.name,
        "active_soul": ctx.souls.current().id,
        "homeassistant_connected": await ctx.homeassistant.connected(),
        "version": ctx.version,
        "event_seq": ctx.bus.last_seq,
        "last_turn_metrics": ctx.pipeline_status.last_turn_metrics,
        "speaker_problems": await ctx.speakers.problems(),
    }


async def get_openapi(call: Call) -> dict[str, Any]:
    from kiwi_voice.hub.openapi import DOCUMENT_KEY

    return call.request.app[DOCUMENT_KEY]


async def post_restart(call: Call) -> RestartResponse:
    call.ctx.lifecycle.request_stop("restart")
    return {"status": "restarting"}


async def post_shutdown(call: Call) -> ShutdownResponse:
    call.ctx.lifecycle.request_stop("shutdown")
    return {"status": "shutting_down"}


ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/health",
        handler=get_health,
        summary="Liveness check (no token needed)",
        tag=TAG,
        response=HealthResponse,
        public=True,
    ),
    Endpoint(
        method="GET",
        path="/api/status",
        handler=get_status,
        summary="Current state and metrics",
        tag=TAG,
        response=StatusResponse,
    ),
    Endpoint(
        method="GET",
        path="/api/openapi.json",
        handler=get_openapi,
        summary="This API as an OpenAPI 3.1 document",
        tag=TAG,
        response=dict[str, Any],
    ),
    Endpoint(
        method="POST",
        path="/api/restart",
        handler=post_restart,
        summary="Restart the hub (exits with code 75; the launcher starts it again)",
        tag=TAG,
        response=RestartResponse,
    ),
    Endpoint(
        method="POST",
        path="/api/shutdown",
        handler=post_shutdown,
        summary="Stop the hub cleanly (exit code 0)",
        tag=TAG,
        response=ShutdownResponse,
    ),
)
