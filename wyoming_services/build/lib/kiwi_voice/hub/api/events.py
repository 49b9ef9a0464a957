"""The event stream: WebSocket /api/events (hello, replay with ?since, filter with ?types, live),
and GET /api/events/history, the same log over plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from typing import Annotated, Any, Literal

import voluptuous as vol
from aiohttp import WSMsgType, web

from kiwi_voice.hub.endpoint import Call, Endpoint, QueryParam
from kiwi_voice.hub.errors import ApiError, bad_request, from_invalid
from kiwi_voice.hub.event_payloads import EVENT_PAYLOADS
from kiwi_voice.hub.events import PublishedEvent, Subscription
from kiwi_voice.hub.protocol import (
    CLIENT_COMMANDS,
    WS_CLOSE_BAD_REQUEST,
    WS_CLOSE_SLOW_CONSUMER,
    EventFrame,
    EventHistoryResponse,
    FrameErrorData,
)
from kiwi_voice.hub.shapes import Length, Range, validator
from kiwi_voice.hub.websocket import close_socket, reject

_LOGGER = logging.getLogger(__name__)
TAG = "events"
HEARTBEAT_SECONDS = 30.0
MAX_CLIENT_FRAME_BYTES = 16 * 1024
KERNEL_SEND_BUFFER = 64 * 1024
_COMMAND_CHECKS = {name: validator(shape) for name, shape in CLIENT_COMMANDS.items()}

_SINCE = QueryParam(
    name="since",
    # Bounded so the document says what the hub parses (a seq is far below 2**53 in practice).
    annotation=Annotated[int, Range(0, 2**53)],
    description="Replay the events after this seq before live ones",
)
# The document lists the event names, so a client (or a fuzzer) knows which the hub accepts.
EventName = Literal[tuple(str(name) for name in EVENT_PAYLOADS)]  # type: ignore[valid-type]
_TYPES = QueryParam(
    name="types",
    annotation=Annotated[list[EventName], Length(1, 64)],
    description="Comma-separated event types to receive (default: all)",
)


def _control_frame(event: str, data: Any) -> str:
    return json.dumps(
        {"event": event, "data": data, "timestamp": round(time.time(), 6), "source": "hub"}
    )


def _event_types(call: Call) -> frozenset[str] | None:
    types = call.query.get("types")
    if types is None:
        return None
    unknown = [name for name in types if name not in EVENT_PAYLOADS]
    if unknown:
        raise bad_request("invalid_value", f"types: unknown event type {unknown[0]!r}", "types")
    return frozenset(types)


async def events_socket(call: Call) -> web.WebSocketResponse:
    request, ctx = call.request, call.ctx
    try:
        types = _event_types(call)
    except ApiError as err:
        return await reject(request, WS_CLOSE_BAD_REQUEST, err.message)
    ws = web.WebSocketResponse(
        heartbeat=HEARTBEAT_SECONDS, compress=False, max_msg_size=MAX_CLIENT_FRAME_BYTES
    )
    await ws.prepare(request)
    _bound_kernel_buffer(request)
    since: int | None = call.query.get("since")
    ctx.websockets[ws] = request
    # No await between subscribing and reading the log: every event lands in exactly one of them.
    subscription = ctx.bus.subscribe(types, ctx.options.client_queue_size)
    snapshot = ctx.bus.last_seq
    missed: list[PublishedEvent] = []
    gap: dict[str, Any] | None = None
    if since is not None:
        oldest = ctx.bus.oldest_replayable_seq()
        if since > snapshot:
            gap = {
                "requested_since": since,
                "oldest_available": oldest,
                "current_seq": snapshot,
                "reason": "unknown_seq",
            }
        else:
            if since < oldest - 1:
                gap = {
                    "requested_since": since,
                    "oldest_available": oldest,
                    "current_seq": snapshot,
                    "reason": "window_exceeded",
                }
            missed = [e for e in ctx.bus.replay(since, snapshot) if subscription.wants(e.event)]
    try:
        hello = {
            "version": ctx.version,
            "seq": snapshot,
            "state": ctx.state.state.value,
            "types": sorted(types) if types is not None else None,
            "replay": len(missed),
        }
        await ws.send_str(_control_frame("hello", hello))
        if gap is not None:
            await ws.send_str(_control_frame("replay_gap", gap))
        last_sent = since if since is not None else snapshot
        for event in missed:
            await ws.send_str(event.frame)
            last_sent = event.seq
        await _serve(ws, request, subscription, last_sent)
    except (ConnectionError, OSError):
        pass
    finally:
        ctx.bus.unsubscribe(subscription)
        ctx.websockets.pop(ws, None)
    return ws


def _bound_kernel_buffer(request: web.BaseRequest) -> None:
    """Cap what the kernel holds for this client, so a stalled reader backs up into its bounded
    queue (and gets cut off) after ~100 KiB instead of after megabytes of auto-tuned buffer."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)


async def _serve(
    ws: web.WebSocketResponse, request: web.BaseRequest, subscription: Subscription, last_sent: int
) -> None:
    progress = {"last_sent": last_sent}
    pump = asyncio.create_task(_pump(ws, subscription, progress))
    overflow = asyncio.create_task(subscription.overflowed.wait())
    commands = asyncio.create_task(_read_commands(ws))
    tasks = {pump, overflow, commands}
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await task
    if overflow in done:
        reason = (
            f"too slow: over {subscription.max_queue} events behind; "
            f"reconnect with ?since={progress['last_sent']}"
        )
        _LOGGER.warning("Disconnecting a slow event client: %s", reason)
        await close_socket(ws, request, WS_CLOSE_SLOW_CONSUMER, reason)


async def _pump(
    ws: web.WebSocketResponse, subscription: Subscription, progress: dict[str, int]
) -> None:
    while not ws.closed:
        event = await subscription.next()
        await ws.send_str(event.frame)
        progress["last_sent"] = event.seq


async def _read_commands(ws: web.WebSocketResponse) -> None:
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            answer = _answer(message.data)
        elif message.type == WSMsgType.BINARY:
            answer = _frame_error(
                415, "unsupported_frame", "binary frames are not accepted on /api/events"
            )
        else:
            continue
        await ws.send_str(answer)


def _answer(text: str) -> str:
    try:
        command = json.loads(text)
    except ValueError as err:
        return _frame_error(400, "invalid_json", f"frame is not valid JSON: {err}")
    if not isinstance(command, dict):
        return _frame_error(
            400, "invalid_frame", 'a frame must be a JSON object like {"type": "ping"}'
        )
    kind = command.get("type")
    if not isinstance(kind, str):
        return _frame_error(400, "missing_field", "type: every frame needs a string field 'type'")
    check = _COMMAND_CHECKS.get(kind)
    if check is None:
        return _frame_error(400, "unknown_type", f"type: unknown frame type {kind!r} (known: ping)")
    try:
        check(command)
    except vol.Invalid as err:
        invalid = from_invalid(err)
        return _frame_error(400, invalid.code, invalid.message)
    return json.dumps({"event": "pong"})


def _frame_error(status: int, code: str, message: str) -> str:
    data: FrameErrorData = {"code": code, "message": message, "status": status}
    return _control_frame("error", data)


async def get_event_history(call: Call) -> EventHistoryResponse:
    bus = call.ctx.bus
    types = _event_types(call)
    since = call.query.get("since", 0)
    limit = call.query.get("limit", 100)
    current = bus.last_seq
    events = [e for e in bus.replay(since, current) if types is None or e.event in types][:limit]
    frames: list[EventFrame] = [json.loads(e.frame) for e in events]
    return {
        "events": frames,
        "current_seq": current,
        "oldest_available": bus.oldest_replayable_seq(),
    }


_LIMIT = QueryParam(
    name="limit",
    annotation=Annotated[int, Range(1, 1000)],
    description="At most this many events (default 100)",
)

ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/events",
        handler=events_socket,
        summary="WebSocket event stream (see x-websocket for the frames)",
        tag=TAG,
        websocket=True,
        query=(_SINCE, _TYPES),
        description=(
            "First frame: hello {version, seq, state, types, replay}. With ?since=SEQ the events "
            "after SEQ follow (a replay_gap frame first if the log no longer holds them all), "
            'then live events, each with a seq. Send {"type": "ping"} to get '
            '{"event": "pong"}. Close codes: 4401 wrong token, 4400 bad query, '
            "4429 client too slow (reconnect with ?since), 1001 hub stopping."
        ),
    ),
    Endpoint(
        method="GET",
        path="/api/events/history",
        handler=get_event_history,
        summary="The replay log over HTTP (Kiwi addition)",
        tag=TAG,
        query=(_SINCE, _TYPES, _LIMIT),
        response=EventHistoryResponse,
    ),
)
