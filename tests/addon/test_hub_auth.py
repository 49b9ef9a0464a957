"""The token: every endpoint in the served OpenAPI document refuses a missing or wrong token
(HTTP 401, WebSocket close 4401), accepts the right one as a header or ?token=, and never lets
it reach the access log."""

from __future__ import annotations

import os
import re
import stat
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support.hub_openapi import CheckedClient, OpenApiContract
from tests.support.hub_process import HubProcess, restart_hub, start_hub

pytestmark = pytest.mark.timeout(90)
WRONG_TOKEN = "not-the-token"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    process = start_hub(tmp_path_factory.mktemp("hub-auth") / "data", speaker=False)
    yield process
    process.stop()


def concrete(template: str) -> str:
    return re.sub(r"\{\w+\}", "x123", template.replace("{speaker_id}", "spk_0123abcd"))


async def test_every_http_operation_refuses_missing_and_wrong_tokens(
    client: CheckedClient, contract: OpenApiContract
) -> None:
    operations = list(contract.http_operations())
    assert len(operations) >= 25
    checked = 0
    for operation in operations:
        if operation.public:
            continue
        path = concrete(operation.template)
        for token in (None, WRONG_TOKEN, ""):
            answer = await client.call(operation.method, path, token=token)
            assert answer.status == 401, f"{operation.method} {path} with {token!r}"
            assert answer.body["error"]["code"] == "unauthorized"
        wrong_query = await client.call(operation.method, path, token=None, params={"token": "x"})
        assert wrong_query.status == 401
        checked += 1
    assert checked == len(operations) - 1  # all but /api/health


async def test_health_is_the_only_public_operation(contract: OpenApiContract) -> None:
    public = [f"{o.method} {o.template}" for o in contract.operations if o.public]
    assert public == ["GET /api/health"]


async def test_token_in_header_or_query_is_accepted(client: CheckedClient, hub: HubProcess) -> None:
    assert (await client.call("GET", "/api/status")).status == 200
    by_query = await client.call("GET", "/api/status", token=None, params={"token": hub.token})
    assert by_query.status == 200
    lowercase_scheme = await client.call(
        "GET", "/api/status", token=None, headers={"Authorization": f"bearer {hub.token}"}
    )
    assert lowercase_scheme.status == 200


async def test_every_websocket_closes_4401_without_the_right_token(
    client: CheckedClient, contract: OpenApiContract
) -> None:
    sockets = [o.template for o in contract.operations if o.websocket]
    assert "/api/events" in sockets
    url = client.base_url.replace("http", "ws", 1)
    for path in sockets:
        for params in ({}, {"token": WRONG_TOKEN}):
            async with client.session.ws_connect(url + path, params=params) as ws:
                message = await ws.receive(timeout=10)
                assert message.type == aiohttp.WSMsgType.CLOSE, path
                assert message.data == 4401
                assert "token" in message.extra
    socket = await client.events()
    try:
        assert (await socket.next())["event"] == "hello"
    finally:
        await socket.close()


async def test_unknown_paths_need_the_token_too(client: CheckedClient) -> None:
    async with client.session.get(client.base_url + "/api/nothing-here") as response:
        assert response.status == 401
    async with client.session.get(
        client.base_url + "/api/nothing-here", headers={"Authorization": f"Bearer {client.token}"}
    ) as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


def test_token_file_is_private_and_survives_restarts(hub: HubProcess) -> None:
    token_file = hub.data_dir / "api_token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert len(hub.token) >= 32
    before = hub.token
    hub.stop()
    restart_hub(hub)
    assert hub.token == before


def test_the_token_is_logged_once_at_creation_and_never_from_a_url(hub: HubProcess) -> None:
    request = urllib.request.Request(f"{hub.base_url}/api/status?token={hub.token}")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    hub.stop()
    log = hub.log()
    assert log.count(hub.token) == 1
    assert "Created the API token" in log
    assert "token=" not in log
