"""The OpenAPI 3.1 document of the whole hub API, generated from the endpoint declarations and
the TypedDicts in `protocol` / `event_payloads` (the only place any shape is written).

WebSocket endpoints are described as GET operations answering 101, with an `x-websocket`
extension that points to the schemas of the frames each side sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from .endpoint import Endpoint
from .event_payloads import EVENT_PAYLOADS
from .protocol import (
    CLIENT_COMMANDS,
    ErrorResponse,
    FrameErrorFrame,
    HelloFrame,
    PongFrame,
    ReplayGapFrame,
)
from .shapes import SchemaDict, SchemaRegistry, json_schema

DOCUMENT_KEY = web.AppKey("kiwi_openapi_document", dict)
EVENT_SCHEMA_PREFIX = "Event_"

_DESCRIPTION = (
    "Kiwi's REST API and event stream. Every endpoint except /api/health needs the API token "
    "(file `api_token` in the data dir): `Authorization: Bearer <token>` or `?token=<token>`. "
    'Errors are `{"error": {"code", "message"}}` with a 4xx for client mistakes.'
)


def build_document(endpoints: Iterable[Endpoint], version: str) -> dict[str, Any]:
    registry = SchemaRegistry()
    event_frame = _register_event_frames(registry)
    paths: dict[str, dict[str, Any]] = {}
    tags: list[str] = []
    for endpoint in endpoints:
        operations = paths.setdefault(endpoint.openapi_path, {})
        method = endpoint.method.lower()
        if method in operations:
            raise ValueError(f"{endpoint.method} {endpoint.path} is declared twice")
        operations[method] = _operation(endpoint, registry, event_frame)
        if endpoint.tag not in tags:
            tags.append(endpoint.tag)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {"title": "Kiwi hub", "version": version, "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"queryToken": []}],
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(registry.components.items())),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def _register_event_frames(registry: SchemaRegistry) -> SchemaDict:
    """One schema per event type (envelope + its payload), and EventFrame as their oneOf."""
    variants = []
    for name, payload in EVENT_PAYLOADS.items():
        variants.append(
            registry.add(
                f"{EVENT_SCHEMA_PREFIX}{name}",
                {
                    "type": "object",
                    "properties": {
                        "event": {"const": str(name)},
                        "data": json_schema(payload, registry),
                        "timestamp": {"type": "number", "description": "Unix time (seconds)"},
                        "source": {"type": "string", "description": "Module that emitted it"},
                        "seq": {"type": "integer", "minimum": 1, "description": "Kiwi addition"},
                    },
                    "required": ["event", "data", "timestamp", "source", "seq"],
                    "additionalProperties": False,
                },
            )
        )
    # Overrides the generic EventFrame TypedDict wherever it is used (e.g. the history list).
    return registry.add("EventFrame", {"oneOf": variants})


def _operation(
    endpoint: Endpoint, registry: SchemaRegistry, event_frame: SchemaDict
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": {},
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.public:
        operation["security"] = []
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": json_schema(endpoint.path_params.get(name, str), registry),
        }
        for name in endpoint.path_param_names()
    ]
    for param in endpoint.query:
        schema = json_schema(param.annotation, registry)
        parameter = {
            "name": param.name,
            "in": "query",
            "required": param.required,
            "description": param.description,
            "schema": schema,
        }
        if schema.get("type") == "array":  # written as ?types=A,B
            parameter.update(style="form", explode=False)
        parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    responses = operation["responses"]
    if endpoint.websocket:
        # Before any upgrade: a plain GET (no Upgrade header) is a 400, a missing token a 401.
        for status in (400,) if endpoint.public else (400, 401):
            responses[str(status)] = {
                "description": HTTPStatus(status).phrase,
                "content": {"application/json": {"schema": registry.ref(ErrorResponse)}},
            }
    if endpoint.websocket and endpoint.frames is not None:
        responses["101"] = {"description": "Switching Protocols: the WebSocket stream"}
        frames = endpoint.frames
        operation["x-websocket"] = {
            "server_frames": registry.add(
                f"{frames.name}ServerFrame",
                {"oneOf": [registry.ref(shape) for shape in frames.server]},
            ),
            "client_frames": registry.add(
                f"{frames.name}ClientFrame",
                {"oneOf": [registry.ref(shape) for shape in frames.client]},
            ),
        }
        if frames.binary:
            operation["x-websocket"]["binary_frames"] = frames.binary
        return operation
    if endpoint.websocket:
        responses["101"] = {"description": "Switching Protocols: the WebSocket stream"}
        operation["x-websocket"] = {
            "server_frames": registry.add(
                "ServerFrame",
                {
                    "oneOf": [
                        event_frame,
                        registry.ref(HelloFrame),
                        registry.ref(ReplayGapFrame),
                        registry.ref(FrameErrorFrame),
                        registry.ref(PongFrame),
                    ]
                },
            ),
            "client_frames": registry.add(
                "ClientFrame",
                {"oneOf": [registry.ref(shape) for shape in CLIENT_COMMANDS.values()]},
            ),
        }
        return operation
    if endpoint.request is not None:
        operation["requestBody"] = {
            "required": endpoint.request_required,
            "content": {"application/json": {"schema": json_schema(endpoint.request, registry)}},
        }
    elif endpoint.raw_body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {endpoint.raw_body: {"schema": {"contentMediaType": endpoint.raw_body}}},
        }
    responses[str(endpoint.status)] = {
        "description": HTTPStatus(endpoint.status).phrase,
        "content": {"application/json": {"schema": json_schema(endpoint.response, registry)}},
    }
    if endpoint.stream_frame is not None:
        # One JSON message per SSE `data:` line or NDJSON line, as the Accept header asks.
        frame = json_schema(endpoint.stream_frame, registry)
        content = responses[str(endpoint.status)]["content"]
        content["text/event-stream"] = {"schema": {"type": "string"}, "x-stream-item": frame}
        content["application/x-ndjson"] = {"schema": {"type": "string"}, "x-stream-item": frame}
    error = registry.ref(ErrorResponse)
    # Every HTTP endpoint reads (and may refuse) a body; 401 unless public; 500 is never planned.
    statuses = {400, 413, 500, *endpoint.errors}
    if not endpoint.public:
        statuses.add(401)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": error}},
        }
    return operation
