"""The API token and who may call the hub.

Every endpoint except those declared public requires the token: `Authorization: Bearer <token>`,
or `?token=<token>` where headers cannot be set (browser WebSockets, links). Requests that HA
Ingress forwards (from the Supervisor's address with an X-Ingress-Path header) are trusted: HA has
already authenticated the user.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from aiohttp import web

_LOGGER = logging.getLogger(__name__)
INGRESS_PROXY_ADDRESS = "172.30.32.2"
INGRESS_HEADER = "X-Ingress-Path"


def load_or_create_token(path: Path) -> tuple[str, bool]:
    """The token stored at `path`, creating it on first start; returns (token, created)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token, False
    token = secrets.token_urlsafe(32)
    write_private_file(path, token + "\n")
    return token, True


def write_private_file(path: Path, text: str) -> None:
    """Write `text` readable by this user only, whole then renamed: a crash never leaves a
    half-written file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def presented_token(request: web.BaseRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token")


def is_ingress(request: web.BaseRequest) -> bool:
    return request.remote == INGRESS_PROXY_ADDRESS and INGRESS_HEADER in request.headers


def is_authorized(request: web.BaseRequest, token: str) -> bool:
    if is_ingress(request):
        return True
    offered = presented_token(request)
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


def masked(token: str) -> str:
    return f"{token[:4]}…{token[-2:]}"
