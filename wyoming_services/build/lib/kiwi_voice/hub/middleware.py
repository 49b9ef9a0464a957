"""The hub's two middlewares: errors as coded JSON, and the token check.

Errors: `ApiError` → its status and code; aiohttp's own HTTP errors (unknown path, wrong method,
body too large) → the same JSON shape; anything unexpected → 500 `internal_error` plus an ERROR
event, logged with its traceback, and the hub keeps serving.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING

from aiohttp import web

from .auth import is_authorized
from .errors import ApiError
from .event_payloads import EventType, error
from .protocol import WS_CLOSE_UNAUTHORIZED
from .websocket import reject

if TYPE_CHECKING:
    from .context import HubContext

_LOGGER = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(ApiError(status, code, message).body(), status=status)


def error_middleware(context: HubContext) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return web.json_response(err.body(), status=err.status)
        except web.HTTPException as err:
            if err.status < 400:
                raise
            code = _HTTP_CODES.get(err.status, f"http_{err.status}")
            message = err.reason or HTTPStatus(err.status).phrase
            if err.status == 404:
                message = f"no endpoint at {request.path}"
            elif err.status == 405:
                message = f"{request.method} is not allowed on {request.path}"
            response = _json_error(err.status, code, message)
            if "Allow" in err.headers:
                response.headers["Allow"] = err.headers["Allow"]
            return response
        except Exception as err:
            _LOGGER.exception("Unexpected error on %s %s", request.method, request.path)
            context.bus.publish(
                EventType.ERROR,
                error(
                    f"internal error on {request.method} {request.path}: {err}",
                    "hub",
                    "internal_error",
                ),
                "hub",
            )
            return _json_error(500, "internal_error", "the hub failed on this request; see its log")

    return errors


def auth_middleware(context: HubContext) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if getattr(request.match_info.handler, "kiwi_public", False):
            return await handler(request)
        if is_authorized(request, context.token):
            return await handler(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await reject(
                request, WS_CLOSE_UNAUTHORIZED, "unauthorized: missing or wrong token"
            )
        raise ApiError(
            401,
            "unauthorized",
            "missing or wrong token: send Authorization: Bearer <token> or ?token=<token>",
        )

    return auth
