"""Check hub traffic against the OpenAPI document the hub serves.

`OpenApiContract(document)` validates each response (status documented for the operation, body
matching its schema) and each WebSocket frame, and remembers what it saw so a test can assert
that every documented operation was exercised. jsonschema is imported only when used.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.hub_process import HubProcess

DOCUMENT_URI = "urn:kiwi:hub-openapi"
METHODS = ("get", "put", "post", "delete", "patch")


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    template: str
    spec: dict[str, Any]
    pattern: re.Pattern[str]

    @property
    def websocket(self) -> bool:
        return "x-websocket" in self.spec

    @property
    def public(self) -> bool:
        return self.spec.get("security") == []


@dataclass
class OpenApiContract:
    document: dict[str, Any]
    seen: set[tuple[str, str, int]] = field(default_factory=set)
    operations: list[Operation] = field(init=False)

    def __post_init__(self) -> None:
        from jsonschema import Draft202012Validator
        from openapi_schema_validator import OAS31Validator, oas31_format_checker
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        resource = Resource.from_contents(self.document, default_specification=DRAFT202012)
        self._registry = Registry().with_resource(DOCUMENT_URI, resource)
        self._validator_class = OAS31Validator
        self._format_checker = oas31_format_checker
        self._draft = Draft202012Validator
        self.operations = [
            Operation(
                method.upper(),
                template,
                spec,
                re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(template)) + "$"),
            )
            for template, item in self.document["paths"].items()
            for method, spec in item.items()
            if method in METHODS
        ]

    def _validate(self, pointer: str, instance: Any, what: str) -> None:
        validator = self._validator_class(
            {"$ref": f"{DOCUMENT_URI}#/{pointer}"},
            registry=self._registry,
            format_checker=self._format_checker,
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            details = "; ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                for e in errors[:5]
            )
            raise AssertionError(f"{what} does not match the OpenAPI document: {details}")

    def operation(self, method: str, path: str) -> Operation:
        path, method = path.split("?", 1)[0], method.upper()
        candidates = [o for o in self.operations if o.method == method and o.pattern.match(path)]
        # A literal path beats a {param} one (e.g. /speakers/enroll vs /speakers/{speaker_id}).
        candidates.sort(key=lambda o: o.template != path)
        if candidates:
            return candidates[0]
        raise AssertionError(f"{method} {path} is not in the OpenAPI document")

    def check_response(self, method: str, path: str, status: int, body: Any) -> None:
        """Assert the status is documented for the operation and the JSON body matches."""
        operation = self.operation(method, path)
        responses = operation.spec["responses"]
        if str(status) not in responses:
            raise AssertionError(
                f"{method} {path} answered {status}, not documented ({', '.join(responses)})"
            )
        self.seen.add((operation.method, operation.template, status))
        content = responses[str(status)].get("content", {})
        if "application/json" in content:
            pointer = _pointer(
                "paths", operation.template, method.lower(), "responses", str(status),
                "content", "application/json", "schema",
            )  # fmt: skip
            self._validate(pointer, body, f"{method} {path} -> {status}")

    def check_frame(self, frame: Any) -> None:
        """Assert a frame from /api/events is one of the documented server frames."""
        self._validate("components/schemas/ServerFrame", frame, f"frame {frame!r:.200}")

    def check_schema(self, name: str, instance: Any) -> None:
        self._validate(_pointer("components", "schemas", name), instance, name)

    def check_document(self) -> None:
        """The document is valid OpenAPI 3.1 and every schema in it is valid JSON Schema."""
        from schemathesis.specs.openapi.definitions import OPENAPI_31

        meta = self._draft(OPENAPI_31)
        problems = [e.message for e in meta.iter_errors(self.document)]
        assert not problems, f"not valid OpenAPI 3.1: {problems[:3]}"
        for name, schema in self.document["components"]["schemas"].items():
            try:
                self._draft.check_schema(schema)
            except Exception as err:
                raise AssertionError(f"component {name} is not valid JSON Schema: {err}") from err

    def http_operations(self) -> Iterator[Operation]:
        return (o for o in self.operations if not o.websocket)

    def unseen_successes(self, tags: Collection[str] | None = None) -> list[str]:
        """Documented success answers (2xx) that no checked response has shown yet.

        `tags` limits the check to operations with one of those tags.
        """
        missing = []
        for operation in self.http_operations():
            if tags is not None and not set(operation.spec.get("tags", ())) & set(tags):
                continue
            for status in operation.spec["responses"]:
                code = int(status)
                seen = (operation.method, operation.template, code) in self.seen
                if 200 <= code < 300 and not seen:
                    missing.append(f"{operation.method} {operation.template} -> {code}")
        return missing


# ---- an HTTP / WebSocket client whose every answer is checked against the document -----------

_DEFAULT = object()


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


class CheckedClient:
    """aiohttp client of a running hub; checks every response against `contract`.

    `token=None` sends no token, a string sends that one (Bearer), the default the hub's own.
    """

    def __init__(self, session: Any, base_url: str, token: str, contract: OpenApiContract) -> None:
        self.session = session
        self.base_url = base_url
        self.token = token
        self.contract = contract

    def _headers(self, token: Any, extra: dict[str, str] | None) -> dict[str, str]:
        token = self.token if token is _DEFAULT else token
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return {**headers, **(extra or {})}

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = _DEFAULT,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        token: Any = _DEFAULT,
        params: dict[str, str] | None = None,
    ) -> Answer:
        kwargs: dict[str, Any] = {"headers": self._headers(token, headers), "params": params}
        if json is not _DEFAULT:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.base_url + path, **kwargs) as response:
            text = await response.text()
            body = response_json(text, response.content_type)
            self.contract.check_response(method, path, response.status, body)
            return Answer(response.status, body, dict(response.headers))

    async def events(self, token: Any = _DEFAULT, **query: Any) -> EventSocket:
        """Open /api/events (token in the query, as a browser would send it)."""
        token = self.token if token is _DEFAULT else token
        params = {k: str(v) for k, v in query.items()}
        if token is not None:
            params["token"] = token
        ws = await self.session.ws_connect(
            self.base_url.replace("http", "ws", 1) + "/api/events", params=params
        )
        return EventSocket(ws, self.contract)


def response_json(text: str, content_type: str) -> Any:
    import json as json_module

    assert content_type == "application/json", f"expected JSON, got {content_type}: {text[:200]}"
    return json_module.loads(text)


class EventSocket:
    """One /api/events connection; every frame received is checked against the document."""

    def __init__(self, ws: Any, contract: OpenApiContract) -> None:
        self.ws = ws
        self.contract = contract

    async def next(self, timeout_s: float = 10.0) -> dict[str, Any]:
        import asyncio

        from aiohttp import WSMsgType

        message = await asyncio.wait_for(self.ws.receive(), timeout_s)
        if message.type != WSMsgType.TEXT:
            raise AssertionError(f"expected a text frame, got {message.type} {message.data!r}")
        frame = message.json()
        self.contract.check_frame(frame)
        return frame

    async def until(self, event: str, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """Frames up to and including the first `event` frame."""
        frames = []
        while True:
            frame = await self.next(timeout_s)
            frames.append(frame)
            if frame["event"] == event:
                return frames

    async def send(self, payload: Any) -> None:
        if isinstance(payload, bytes):
            await self.ws.send_bytes(payload)
        elif isinstance(payload, str):
            await self.ws.send_str(payload)
        else:
            await self.ws.send_json(payload)

    async def closed(self, timeout_s: float = 10.0) -> tuple[int | None, str]:
        """Wait for the server to close; (close code, reason)."""
        import asyncio

        from aiohttp import WSMsgType

        while True:
            message = await asyncio.wait_for(self.ws.receive(), timeout_s)
            if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return self.ws.close_code, str(message.extra or "")
            if message.type == WSMsgType.TEXT:
                self.contract.check_frame(message.json())

    async def close(self) -> None:
        await self.ws.close()


def fetch_contract(hub: HubProcess) -> OpenApiContract:
    """The OpenAPI document a running hub serves, as the contract its traffic is checked against."""
    request = urllib.request.Request(hub.base_url + "/api/openapi.json", headers=hub.auth_headers)
    with urllib.request.urlopen(request) as response:
        return OpenApiContract(json.load(response))
