"""Build the aiohttp application from a context, the controls and endpoint groups."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiohttp import web

from .api import ENDPOINTS
from .context import HubContext
from .controls import CONTROLS_KEY, Controls
from .dashboard import add_dashboard_routes
from .endpoint import Endpoint, wrap
from .middleware import auth_middleware, error_middleware
from .openapi import DOCUMENT_KEY, build_document
from .protocol import WS_CLOSE_GOING_AWAY
from .websocket import close_socket

_LOGGER = logging.getLogger(__name__)
CONTEXT_KEY = web.AppKey("kiwi_context", HubContext)
# Audio uploads (enroll, identify) need more than aiohttp's 1 MiB default; JSON stays at 64 KiB.
MAX_REQUEST_BYTES = 16 * 1024 * 1024


def build_app(
    context: HubContext, controls: Controls, extra_endpoints: Iterable[Endpoint] = ()
) -> web.Application:
    """The hub's application: Kiwi's endpoints plus those other parts contribute.

    `controls` serve /api/tts/test, /api/stop and /api/reset-context, and are closed before
    the context when the app is cleaned up."""
    endpoints = (*ENDPOINTS, *extra_endpoints)
    app = web.Application(
        middlewares=[error_middleware(context), auth_middleware(context)],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[CONTEXT_KEY] = context
    app[CONTROLS_KEY] = controls
    app[DOCUMENT_KEY] = build_document(endpoints, context.version)
    for endpoint in endpoints:
        app.router.add_route(endpoint.method, endpoint.path, wrap(endpoint, context))
    add_dashboard_routes(app)  # the browser page at / (static files, no token needed)
    app.on_startup.append(_start_context)
    app.on_shutdown.append(_close_event_clients)
    app.on_cleanup.append(_close_context)
    return app


async def _start_context(app: web.Application) -> None:
    app[CONTEXT_KEY].stt_models.start()


async def _close_event_clients(app: web.Application) -> None:
    context = app[CONTEXT_KEY]
    reason = f"hub {context.lifecycle.reason or 'stopping'}; reconnect with ?since"
    for ws, request in list(context.websockets.items()):
        await close_socket(ws, request, WS_CLOSE_GOING_AWAY, reason, wait_seconds=1.0)


async def _close_context(app: web.Application) -> None:
    await app[CONTROLS_KEY].close()
    await app[CONTEXT_KEY].close()
