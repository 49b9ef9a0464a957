"""Closing WebSockets with a code and a reason, even when the peer stopped reading."""

from __future__ import annotations

import asyncio

from aiohttp import web

CLOSE_TIMEOUT_SECONDS = 2.0


async def close_socket(
    ws: web.WebSocketResponse,
    request: web.BaseRequest,
    code: int,
    reason: str,
    wait_seconds: float = CLOSE_TIMEOUT_SECONDS,
) -> None:
    """Send a close frame; a peer that does not take it in time has its connection cut."""
    try:
        await asyncio.wait_for(ws.close(code=code, message=reason.encode()[:123]), wait_seconds)
    except (TimeoutError, ConnectionError, OSError):
        # transport.close() would wait for buffered data a stalled peer never reads.
        if request.transport is not None:
            request.transport.abort()


async def reject(request: web.BaseRequest, code: int, reason: str) -> web.WebSocketResponse:
    """Accept the upgrade only to refuse it: browsers see close codes, not HTTP statuses."""
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    await close_socket(ws, request, code, reason)
    return ws
