"""Endpoints declared once: the route, its handler, and the shapes the OpenAPI document shows.

`app.py` registers each `Endpoint` with aiohttp and `openapi.py` documents the same list, so a
route cannot exist undocumented. The wrapper parses and validates the body and query before the
handler runs, and serializes what the handler returns with the declared status.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, get_origin

import voluptuous as vol
from aiohttp import web

from .errors import ApiError, bad_request, from_invalid
from .protocol import WS_CLOSE_BAD_REQUEST
from .shapes import body_validator, unwrap, value_validator
from .websocket import reject

if TYPE_CHECKING:
    from .context import HubContext

MAX_JSON_BYTES = 64 * 1024
_PATH_PARAM = re.compile(r"{(\w+)(?::[^}]*)?}")


@dataclass(frozen=True)
class Call:
    """One request as a handler sees it: the context, the validated body and query."""

    ctx: HubContext
    request: web.Request
    body: dict[str, Any]
    query: dict[str, Any]

    def path_param(self, name: str) -> str:
        return self.request.match_info[name]


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, kw_only=True)
class QueryParam:
    name: str
    annotation: Any  # str, int, bool or a list[str] written as A,B
    description: str
    required: bool = False


@dataclass(frozen=True, kw_only=True)
class WebSocketFrames:
    """The frames of a WebSocket endpoint other than /api/events (e.g. /api/audio)."""

    name: str  # component prefix: {name}ServerFrame, {name}ClientFrame
    server: tuple[Any, ...]  # TypedDicts the hub sends
    client: tuple[Any, ...]  # TypedDicts the client may send
    binary: str = ""  # what binary frames carry, if any


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    method: str
    path: str  # aiohttp syntax; {name} or {name:regex}
    handler: Handler
    summary: str
    tag: str
    response: Any = None  # a TypedDict; None for WebSocket endpoints
    status: int = 200
    request: Any = None  # TypedDict or PartialOf annotation; None: no body expected
    request_required: bool = True
    raw_body: str | None = None  # a content type handled by the handler itself (audio/wav)
    query: tuple[QueryParam, ...] = ()
    path_params: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    public: bool = False
    websocket: bool = False
    description: str = ""
    frames: WebSocketFrames | None = None  # WebSocket endpoints with their own frames
    # Streamed answers (SSE / NDJSON, chosen by the Accept header): the shape of each message.
    stream_frame: Any = None

    @property
    def operation_id(self) -> str:
        return self.handler.__name__

    @property
    def openapi_path(self) -> str:
        return _PATH_PARAM.sub(r"{\1}", self.path)

    def path_param_names(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


def wrap(
    endpoint: Endpoint, context: HubContext
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    body_check = body_validator(endpoint.request) if endpoint.request is not None else None
    query_checks = {
        param.name: (param, value_validator(param.annotation)) for param in endpoint.query
    }

    async def handle(request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = {}
        if endpoint.raw_body is None and not endpoint.websocket:
            body = await _read_body(request, body_check, endpoint.request_required)
        try:
            query = _read_query(request, query_checks)
        except ApiError as err:
            if endpoint.websocket:
                return await reject(request, WS_CLOSE_BAD_REQUEST, err.message)
            raise
        result = await endpoint.handler(Call(context, request, body, query))
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result, status=endpoint.status)

    handle.__name__ = endpoint.operation_id
    handle.kiwi_public = endpoint.public  # type: ignore[attr-defined]
    return handle


async def _read_body(
    request: web.Request, check: vol.Schema | None, required: bool
) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(
            413, "payload_too_large", f"JSON bodies are limited to {MAX_JSON_BYTES} bytes"
        )
    raw = await request.read() if request.can_read_body else b""
    if len(raw) > MAX_JSON_BYTES:
        raise ApiError(
            413, "payload_too_large", f"JSON bodies are limited to {MAX_JSON_BYTES} bytes"
        )
    try:
        # Only a truly empty body is "no body"; whitespace alone is not valid JSON.
        text = raw.decode("utf-8") if raw else ""
    except UnicodeDecodeError as err:
        raise bad_request("invalid_json", f"the body is not UTF-8 JSON: {err}") from err
    if not text:
        if check is not None and required:
            raise bad_request("missing_body", "this endpoint needs a JSON object body")
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise bad_request("invalid_json", f"the body is not valid JSON: {err}") from err
    if check is None:
        if value in ({}, None):
            return {}
        raise bad_request("unexpected_body", "this endpoint takes no body (send none or {})")
    if not isinstance(value, dict):
        raise bad_request(
            "invalid_body", f"the body must be a JSON object, not {type(value).__name__}"
        )
    try:
        return dict(check(value))
    except vol.Invalid as err:
        raise from_invalid(err) from err


def _read_query(
    request: web.Request, checks: Mapping[str, tuple[QueryParam, Any]]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, (param, check) in checks.items():
        raw = request.query.get(name)
        if raw is None:
            if param.required:
                raise bad_request("missing_field", f"{name}: query parameter is required", name)
            continue
        try:
            values[name] = check(_coerce_query(raw, param.annotation))
        except (ValueError, vol.Invalid) as err:
            detail = err.error_message if isinstance(err, vol.Invalid) else str(err)
            raise bad_request("invalid_value", f"{name}: {detail}", name) from err
    return values


def _coerce_query(raw: str, annotation: Any) -> Any:
    base, _constraints = unwrap(annotation)
    base = get_origin(base) or base
    if base is int:
        if not re.fullmatch(r"-?\d{1,18}", raw.strip()):
            raise ValueError("expected an integer")
        return int(raw)
    if base is list:
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw
