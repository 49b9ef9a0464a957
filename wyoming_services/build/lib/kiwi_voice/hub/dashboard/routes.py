"""Serves the dashboard's static files: the page at `/`, its scripts and styles under `/dashboard/`.

These are the only routes open without the token (the page must load before it can ask for
one); every API call the page makes carries the token, or comes through HA Ingress. The page
addresses everything relative to itself, so it works at `/` and under an Ingress prefix alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).resolve().parent / "static"
INDEX_FILE = STATIC_DIR / "index.html"
ASSET_PREFIX = "/dashboard/"

_CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",  # module scripts are refused with any non-JavaScript type
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Same-origin only: under Ingress "self" is Home Assistant's origin, which proxies to the hub.
# `media-src blob:` is not needed (audio goes through an AudioWorklet), so it is not allowed.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    )
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _public(handler: Handler) -> Handler:
    """Mark a handler as reachable without the token (see middleware.auth_middleware)."""
    handler.kiwi_public = True  # type: ignore[attr-defined]
    return handler


def _file_response(path: Path) -> web.FileResponse:
    response = web.FileResponse(path)
    response.content_type = _CONTENT_TYPES.get(path.suffix, "application/octet-stream")
    # Revalidate every time (cheap: Last-Modified / 304), so an updated add-on is never half cached.
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The page may be opened with ?token=…: never send it on in a Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@_public
async def dashboard_page(request: web.Request) -> web.StreamResponse:
    response = _file_response(INDEX_FILE)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@_public
async def dashboard_asset(request: web.Request) -> web.StreamResponse:
    relative = request.match_info["asset"]
    path = (STATIC_DIR / relative).resolve()
    # Only files inside the static folder, with a type we serve: no `..`, no symlinked escapes.
    if (
        not path.is_relative_to(STATIC_DIR)
        or path.suffix not in _CONTENT_TYPES
        or not path.is_file()
    ):
        raise web.HTTPNotFound()
    return _file_response(path)


def add_dashboard_routes(app: web.Application) -> None:
    """Register the page and its assets on the hub's application."""
    app.router.add_get("/", dashboard_page, name="dashboard")
    app.router.add_get(ASSET_PREFIX + "{asset:.+}", dashboard_asset, name="dashboard_asset")
