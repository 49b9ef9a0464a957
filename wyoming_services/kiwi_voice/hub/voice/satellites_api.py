"""GET /api/satellites and POST /api/satellites/{satellite_id}/listen: what Kiwi's integration
needs for Home Assistant's assist_satellite actions (docs/satellites.md).

Announcing on a satellite is POST /api/tts/test with `target` (and `wait`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal, NotRequired, TypedDict

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ServiceError, from_service_error, not_found
from kiwi_voice.hub.event_payloads import SatelliteInfo
from kiwi_voice.hub.shapes import Doc, Length

from .runtime import PIPELINE_KEY
from .satellites import HOST

TAG = "satellites"
SatelliteId = Annotated[str, Length(1, 80), Doc("host, or room:<name>")]


class SatellitesResponse(TypedDict):
    """Kiwi addition."""

    satellites: list[SatelliteInfo]


class ListenRequest(TypedDict, total=False):
    """Kiwi addition."""

    answer_only: Annotated[
        bool,
        Doc(
            "true: transcribe the utterance and answer with it, no turn (an answer to a "
            "question); false (default): the utterance is a turn like any other"
        ),
    ]


class ListenResponse(TypedDict):
    """Kiwi addition."""

    satellite: str
    turn_id: str
    speech: Annotated[bool, Doc("false: nobody spoke before the listen timeout")]
    text: Annotated[str | None, Doc("The transcript (answer_only); null otherwise")]
    language: NotRequired[str]
    status: Literal["heard", "nothing_heard"]


class RepliesRequest(TypedDict):
    """Kiwi addition."""

    replies: Annotated[
        Literal["here", "elsewhere"],
        Doc("here: its own speaker; elsewhere: Home Assistant plays them (a media player)"),
    ]


class RepliesResponse(TypedDict):
    """Kiwi addition."""

    satellite: str
    replies: Literal["here", "elsewhere"]


async def patch_satellite(call: Call) -> RepliesResponse:
    satellite_id = call.path_param("satellite_id")
    if satellite_id != HOST and not satellite_id.startswith("room:"):
        raise not_found("unknown_satellite", f"{satellite_id!r} is no satellite id (host, room:X)")
    replies = call.body["replies"]
    call.request.app[PIPELINE_KEY].satellites.set_replies(satellite_id, here=replies == "here")
    return {"satellite": satellite_id, "replies": replies}


async def get_satellites(call: Call) -> SatellitesResponse:
    return {"satellites": call.request.app[PIPELINE_KEY].satellites.describe()}


async def post_listen(call: Call) -> ListenResponse:
    runtime = call.request.app[PIPELINE_KEY]
    satellite_id = call.path_param("satellite_id")
    satellite = runtime.satellites.get(satellite_id)
    if satellite is None:
        known = ", ".join(s["id"] for s in runtime.satellites.describe()) or "none"
        raise not_found("unknown_satellite", f"no satellite {satellite_id!r} (known: {known})")
    heard = await satellite.listener.listen_now(
        answer_only=bool((call.body or {}).get("answer_only", False))
    )
    try:
        # Shielded: a client that gives up must not cancel the capture of the satellite.
        result = await asyncio.shield(heard)
    except ServiceError as err:
        raise from_service_error(err) from err
    answer: ListenResponse = {
        "satellite": satellite_id,
        "turn_id": result.turn_id,
        "speech": result.speech,
        "text": result.text,
        "status": "heard" if result.speech else "nothing_heard",
    }
    if result.language is not None:
        answer["language"] = result.language
    return answer


ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/satellites",
        handler=get_satellites,
        summary="Kiwi's own microphones: the host microphone and named browser microphones",
        tag=TAG,
        response=SatellitesResponse,
    ),
    Endpoint(
        method="PATCH",
        path="/api/satellites/{satellite_id}",
        handler=patch_satellite,
        summary="Where a satellite's replies play: its own speaker, or elsewhere (Home Assistant)",
        tag=TAG,
        path_params={"satellite_id": SatelliteId},
        request=RepliesRequest,
        response=RepliesResponse,
        errors=(404,),
        description="A room that is not connected now may be set too: it keeps the choice "
        "when it connects (until the hub restarts).",
    ),
    Endpoint(
        method="POST",
        path="/api/satellites/{satellite_id}/listen",
        handler=post_listen,
        summary="Listen on a satellite now, without a wake word (answers when the user stopped)",
        tag=TAG,
        path_params={"satellite_id": SatelliteId},
        request=ListenRequest,
        request_required=False,
        response=ListenResponse,
        errors=(404, 502, 503),
        description="Home Assistant's start_conversation (the utterance becomes a turn) and "
        "ask_question (`answer_only`: the transcript comes back, no turn).",
    ),
)
