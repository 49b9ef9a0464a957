"""Wyoming fuzzing of the four services over raw sockets: malformed headers, lying lengths,
wrong types, events out of order. Whatever arrives, a service answers with coded `error` events
or closes the connection, never dies, and still serves a valid `describe` afterwards.

Real kiwi-stt, kiwi-tts, kiwi-wake and kiwi-speaker processes on the offline models. Each
example is written to a fresh connection and the write side is then shut (half-close), so a
frame that announces more bytes than it carries ends at EOF instead of waiting forever.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.pipeline_stack import service_starters, start_services
from tests.support.wyoming_process import ServiceProcess, describe

pytestmark = pytest.mark.timeout(240)

SERVICES = ("stt", "tts", "wake", "speaker")
ANSWER_WAIT_S = 15.0  # generous: a fuzzed transcribe or synthesize runs the real engine
EXAMPLES_PER_SERVICE = 60
# The event types the four services know, so generated frames reach their handlers.
KNOWN_TYPES = (
    "describe", "ping", "transcribe", "synthesize", "synthesize-start", "synthesize-chunk",
    "synthesize-stop", "detect", "audio-start", "audio-chunk", "audio-stop", "speaker-enroll",
    "speaker-identify", "speaker-list", "speaker-update", "speaker-delete", "error",
)  # fmt: skip
FRAME_ERROR_CODES = {"bad_request", "payload_too_large"}


@pytest.fixture(scope="module")
def services(
    offline_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    log_dir = tmp_path_factory.mktemp("fuzz-wyoming")
    started = start_services(service_starters(offline_models_dir, log_dir), SERVICES)
    try:
        yield started
    finally:
        for service in started.values():
            service.stop()
    for name, service in started.items():
        assert "Traceback" not in service.log(), f"{name}:\n{service.log()}"


# ---- a raw Wyoming peer ---------------------------------------------------------------------


@dataclass
class Exchange:
    """What a service sent back on one connection, and whether it closed by itself."""

    events: list[dict[str, Any]]
    closed: bool


def _parse_events(stream: bytes) -> list[dict[str, Any]]:
    """Split what a service wrote into events; fails the test if it is not valid Wyoming."""
    events: list[dict[str, Any]] = []
    offset = 0
    while offset < len(stream):
        end = stream.index(b"\n", offset)
        header = json.loads(stream[offset:end])
        assert isinstance(header, dict), header
        assert isinstance(header.get("type"), str), header
        offset = end + 1
        data = dict(header.get("data") or {})
        data_length = int(header.get("data_length") or 0)
        payload_length = int(header.get("payload_length") or 0)
        if data_length:
            data.update(json.loads(stream[offset : offset + data_length]))
            offset += data_length
        assert offset + payload_length <= len(stream), "a payload was cut short"
        offset += payload_length
        events.append({"type": header["type"], "data": data})
    return events


def exchange(port: int, raw: bytes, *, half_close: bool = True) -> Exchange:
    """Write `raw` on a fresh connection, read until the service closes or goes quiet."""
    received = bytearray()
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(raw)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the service already gave up on this connection: allowed
        deadline = time.monotonic() + ANSWER_WAIT_S
        sock.settimeout(0.5 if not half_close else 1.0)
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if not half_close and received:
                    break  # it answered and keeps the connection open: allowed
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    return Exchange(_parse_events(bytes(received)), closed)


def assert_still_serving(service: ServiceProcess) -> None:
    assert service.process.poll() is None, service.log()
    info = describe(service.port)
    assert info, "describe answered with an empty info"


def assert_errors_are_coded(events: list[dict[str, Any]]) -> None:
    for event in events:
        if event["type"] == "error":
            assert event["data"].get("code"), event
            assert event["data"].get("text"), event
            assert event["data"]["code"] != "internal_error", event


def frame(header: dict[str, Any], data: bytes = b"", payload: bytes = b"") -> bytes:
    return json.dumps(header).encode() + b"\n" + data + payload


# ---- hand-written malformed frames: each gets a coded error --------------------------------

MALFORMED: list[tuple[str, bytes]] = [
    ("not JSON", b"hello there\n"),
    ("JSON array", b"[1, 2, 3]\n"),
    ("JSON string", b'"describe"\n'),
    ("no type", b'{"data": {}}\n'),
    ("type is a number", b'{"type": 7}\n'),
    ("data is a list", b'{"type": "describe", "data": [1]}\n'),
    ("negative data_length", b'{"type": "describe", "data_length": -4}\n'),
    ("data_length is text", b'{"type": "describe", "data_length": "many"}\n'),
    ("data_length is a float string", b'{"type": "describe", "data_length": "1e3"}\n'),
    ("data is not JSON", frame({"type": "ping", "data_length": 5}, b"{{{{{")),
    ("data JSON is a list", frame({"type": "ping", "data_length": 6}, b"[1, 2]")),
    ("NUL bytes", b"\x00\x00\x00\x00\n"),
    ("invalid UTF-8", b'{"type": "\xff\xfe"}\n'),
]


@pytest.mark.parametrize("name", SERVICES)
def test_malformed_headers_get_a_coded_error(
    services: dict[str, ServiceProcess], name: str
) -> None:
    service = services[name]
    for label, raw in MALFORMED:
        # The connection stays open from our side: the service must answer by itself.
        result = exchange(service.port, raw, half_close=False)
        assert result.events, f"{name}: no answer to {label}"
        error = result.events[-1]
        assert error["type"] == "error", (label, result.events)
        assert error["data"]["code"] in FRAME_ERROR_CODES, (label, error)
        assert result.closed, f"{name}: a stream out of sync must be closed ({label})"
    assert_still_serving(service)


@pytest.mark.parametrize("name", SERVICES)
def test_lengths_over_the_limits_are_skipped_and_the_connection_goes_on(
    services: dict[str, ServiceProcess], name: str
) -> None:
    service = services[name]
    too_big = 5 * 1024 * 1024  # over both the data (1 MiB) and the payload (4 MiB) limit
    raw = frame(
        {"type": "audio-chunk", "payload_length": too_big}, payload=b"\x00" * too_big
    ) + frame({"type": "ping", "data": {"text": "still here"}})
    result = exchange(service.port, raw)
    types = [e["type"] for e in result.events]
    assert types == ["error", "pong"], result.events
    assert result.events[0]["data"]["code"] == "payload_too_large"
    assert result.events[1]["data"]["text"] == "still here"
    assert result.closed
    # A length that promises far more than ever comes: the service ends at EOF, no hang.
    for header in ({"data_length": 10**12}, {"payload_length": 10**12}, {"data_length": 50}):
        result = exchange(service.port, frame({"type": "audio-chunk", **header}, b"{}"))
        assert result.closed, header
        assert_errors_are_coded(result.events)
    assert_still_serving(service)


@pytest.mark.parametrize("name", SERVICES)
def test_a_header_line_without_end_is_refused(
    services: dict[str, ServiceProcess], name: str
) -> None:
    service = services[name]
    result = exchange(service.port, b'{"type": "' + b"x" * 300_000, half_close=False)
    assert result.closed
    assert_errors_are_coded(result.events)
    assert_still_serving(service)


# ---- generated frames -----------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)
# Data fields the services read, so values of the wrong type reach the parsers.
FIELD_NAMES = st.sampled_from(
    ("text", "language", "name", "names", "rate", "width", "channels", "timestamp", "id",
     "priority", "is_blocked", "voice", "model", "speaker", "auto_learned")
) | st.text(max_size=8)  # fmt: skip
LENGTHS = st.one_of(
    st.none(),
    st.just("exact"),
    st.integers(-3, 3000),
    st.sampled_from(["12", "x", 1.5, True, [], 10**9]),
)


@st.composite
def wyoming_frames(draw: st.DrawFn) -> bytes:
    event_type = draw(st.sampled_from(KNOWN_TYPES) | st.text(max_size=12))
    header: dict[str, Any] = {"type": event_type}
    if draw(st.booleans()):
        header["data"] = draw(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=5) | JSON_VALUES)
    extra = draw(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=4))
    data_bytes = draw(st.sampled_from([json.dumps(extra).encode(), b""]) | st.binary(max_size=40))
    payload = draw(st.binary(max_size=3200))
    for key, body in (("data_length", data_bytes), ("payload_length", payload)):
        length = draw(LENGTHS)
        if length == "exact":
            length = len(body)
        if length is not None:
            header[key] = length
    return frame(header, data_bytes, payload)


CONVERSATIONS = st.lists(wyoming_frames(), min_size=1, max_size=5).map(b"".join) | st.binary(
    max_size=600
)


@pytest.mark.parametrize("name", SERVICES)
def test_generated_frames_never_break_a_service(
    services: dict[str, ServiceProcess], name: str
) -> None:
    service = services[name]

    @settings(
        max_examples=EXAMPLES_PER_SERVICE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same examples every run: a CI failure reproduces locally
    )
    @given(raw=CONVERSATIONS)
    def check(raw: bytes) -> None:
        result = exchange(service.port, raw)
        assert result.closed, f"{name} neither answered nor closed: {raw[:200]!r}"
        assert_errors_are_coded(result.events)
        assert service.process.poll() is None, service.log()

    check()
    assert_still_serving(service)
