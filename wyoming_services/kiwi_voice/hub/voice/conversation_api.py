"""POST /api/conversation: text in, an answer out, routed like a voice turn (Home Assistant
first, then Claude with the active soul). Kiwi's integration uses it as HA's conversation agent.

The answer is one JSON object, or a stream when the client asks for one: Server-Sent Events
with `Accept: text/event-stream`, newline-delimited JSON with `Accept: application/x-ndjson`.
Each streamed message is a `delta`, then one `done` (or `error`).
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from aiohttp import web

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ApiError, ServiceError, from_service_error
from kiwi_voice.hub.event_payloads import EventType, error, llm_complete, llm_token
from kiwi_voice.hub.homeassistant import Requester, acting_for
from kiwi_voice.hub.pipeline.policy import Action, Speaker
from kiwi_voice.hub.pipeline.turn import speaker_from
from kiwi_voice.hub.protocol import LanguageCode
from kiwi_voice.hub.routing.router import Reply, Route, once
from kiwi_voice.hub.shapes import Doc, Length

from .runtime import PIPELINE_KEY

_LOGGER = logging.getLogger(__name__)
TAG = "conversation"
SOURCE = "conversation"
SSE = "text/event-stream"
NDJSON = "application/x-ndjson"


class ConversationRequest(TypedDict):
    """Kiwi addition."""

    text: Annotated[str, Length(1, 2000)]
    language: NotRequired[LanguageCode]
    conversation_id: NotRequired[
        Annotated[str, Length(1, 128), Doc("Continue this conversation (its history is kept)")]
    ]
    utterance_id: NotRequired[
        Annotated[
            str,
            Length(1, 64),
            Doc(
                "The Assist utterance this text is (POST /api/assist/stt): its speaker's policy "
                "applies (a guest's command may wait for approval), and Home Assistant runs it "
                "as the speaker's linked user"
            ),
        ]
    ]


class ConversationResponse(TypedDict):
    """Kiwi addition."""

    response: str
    conversation_id: str
    route: Annotated[
        Literal["homeassistant", "claude", "refusal"],
        Doc("refusal: Kiwi itself (the command needs the owner's approval)"),
    ]
    model: Annotated[str | None, Doc("The Claude model, when Claude answered")]
    response_type: Annotated[str | None, Doc("Home Assistant's response_type, when it answered")]


class ConversationDelta(TypedDict):
    type: Literal["delta"]
    text: str


class ConversationDone(TypedDict):
    type: Literal["done"]
    response: str
    conversation_id: str
    route: Literal["homeassistant", "claude", "refusal"]
    model: str | None
    response_type: str | None


class ConversationStreamError(TypedDict):
    type: Literal["error"]
    code: str
    message: str


ConversationStreamFrame = ConversationDelta | ConversationDone | ConversationStreamError


def _report(call: Call, err: ServiceError) -> None:
    _LOGGER.warning("Conversation: %s failed: %s (%s)", err.service, err.message, err.code)
    payload = error(err.message, err.service, err.code, setting=err.setting)
    call.ctx.bus.publish(EventType.ERROR, payload, err.service)


def _api_error(err: ServiceError) -> ApiError:
    if err.code == "no_route":
        return ApiError(503, err.code, err.message)
    return from_service_error(err)


def _stream_format(request: web.Request) -> str | None:
    accept = request.headers.get("Accept", "")
    if SSE in accept:
        return SSE
    if NDJSON in accept:
        return NDJSON
    return None


async def post_conversation(call: Call) -> Any:
    text = call.body["text"]
    language = call.body.get("language") or str(call.ctx.settings.get("language"))
    conversation_id = call.body.get("conversation_id") or f"conv_{secrets.token_hex(8)}"
    speaker = _utterance_speaker(call)
    # A voice's request runs in HA as its speaker's user, also while the reply streams
    # (Claude's tool calls run then).
    with acting_for(Requester(speaker.id) if speaker is not None else None):
        return await _answer(call, speaker, text, language, conversation_id)


async def _answer(
    call: Call, speaker: Speaker | None, text: str, language: str, conversation_id: str
) -> Any:
    context_key = f"conversation:{conversation_id}"
    runtime = call.request.app[PIPELINE_KEY]
    try:
        reply = await _decide_and_route(call, speaker, text, language, context_key)
    except ServiceError as err:
        _report(call, err)
        raise _api_error(err) from err
    stream_format = _stream_format(call.request)
    if stream_format is None:
        try:
            async for _delta in _deltas(call, reply):
                pass
        except ServiceError as err:
            _report(call, err)
            raise _api_error(err) from err
        runtime.router.remember(context_key, text, reply)
        return _done(reply, conversation_id, typed=False)
    return await _stream(
        call,
        reply=reply,
        stream_format=stream_format,
        context_key=context_key,
        text=text,
        conversation_id=conversation_id,
    )


def _utterance_speaker(call: Call) -> Speaker | None:
    """Who spoke the Assist utterance the request names; None for typed text (the client
    holds the owner's token)."""
    utterance_id = call.body.get("utterance_id")
    if utterance_id is None:
        return None
    utterance = call.ctx.assist.utterance(utterance_id)
    if utterance is None:
        raise ApiError(
            404, "unknown_utterance", f"no recent utterance {utterance_id!r}", "utterance_id"
        )
    return speaker_from(utterance.speaker, call.request.app[PIPELINE_KEY].pipeline.services.links)


async def _decide_and_route(
    call: Call, speaker: Speaker | None, text: str, language: str, context_key: str
) -> Reply:
    """Route the text; a voice's text first passes the speaker policy, like a voice turn."""
    runtime = call.request.app[PIPELINE_KEY]
    if speaker is None:
        return await runtime.router.route(
            text,
            language,
            context_key,
            allow_home_control=True,
            report_error=lambda err: _report(call, err),
        )
    services = runtime.pipeline.services
    decision = services.policy.decide(speaker)
    if decision.action is Action.DROP:
        raise ApiError(403, "speaker_blocked", f"not answered: {decision.reason}")
    allow_home_control = decision.action is Action.RUN
    if decision.action is Action.APPROVE:
        result = await services.approvals.request(speaker, text, language)
        if not result.approved:
            refusal = result.answer or "Sorry, that was not approved."
            return Reply(route=Route.REFUSAL, deltas=once(refusal))
        allow_home_control = True
    return await runtime.router.route(
        text,
        language,
        context_key,
        allow_home_control=allow_home_control,
        report_error=lambda err: _report(call, err),
        soul=speaker.soul,
    )


async def _deltas(call: Call, reply: Reply) -> Any:
    from_claude = reply.route is Route.CLAUDE
    async for delta in reply.stream():
        if from_claude:
            call.ctx.bus.publish(EventType.LLM_TOKEN, llm_token(delta), SOURCE)
        yield delta
    if from_claude:
        call.ctx.bus.publish(EventType.LLM_COMPLETE, llm_complete(reply.text, reply.model), SOURCE)


def _done(reply: Reply, conversation_id: str, *, typed: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "response": reply.text,
        "conversation_id": conversation_id,
        "route": reply.route.value,
        "model": reply.model,
        "response_type": reply.response_type,
    }
    return {"type": "done", **answer} if typed else answer


async def _stream(
    call: Call,
    *,
    reply: Reply,
    stream_format: str,
    context_key: str,
    text: str,
    conversation_id: str,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": stream_format, "Cache-Control": "no-cache"}
    )
    await response.prepare(call.request)

    async def send(frame: dict[str, Any]) -> None:
        data = json.dumps(frame, ensure_ascii=False)
        if stream_format == SSE:
            await response.write(f"event: {frame['type']}\ndata: {data}\n\n".encode())
        else:
            await response.write(data.encode() + b"\n")

    try:
        async for delta in _deltas(call, reply):
            await send({"type": "delta", "text": delta})
    except ServiceError as err:
        _report(call, err)
        await send({"type": "error", "code": err.code, "message": err.message})
    else:
        await send(_done(reply, conversation_id, typed=True))
        call.request.app[PIPELINE_KEY].router.remember(context_key, text, reply)
    await response.write_eof()
    return response


ENDPOINTS = (
    Endpoint(
        method="POST",
        path="/api/conversation",
        handler=post_conversation,
        summary="Ask Kiwi in text: Home Assistant first, then Claude with the active soul",
        tag=TAG,
        request=ConversationRequest,
        response=ConversationResponse,
        stream_frame=ConversationStreamFrame,
        errors=(403, 404, 502, 503),
        description=(
            "Kiwi addition, used by the integration's conversation agent. With `utterance_id` "
            "(an Assist utterance from POST /api/assist/stt) the speaker's policy applies: a "
            "blocked speaker gets 403 `speaker_blocked`, a guest's command may wait for the "
            "owner's approval, and Home Assistant runs it as the speaker's linked user. With "
            "`Accept: text/event-stream` (SSE) or `Accept: application/x-ndjson` the answer "
            "streams: `delta` messages with text, then `done` (the same fields as the JSON "
            "answer) or `error`."
        ),
    ),
)
