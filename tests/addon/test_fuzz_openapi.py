"""schemathesis against the hub's own /api/openapi.json: every operation, with the token.

Positive and negative cases are generated from the document; every answer must be documented
(status, content type, body schema, headers) and none may be a 5xx. /api/restart and
/api/shutdown end the hub and have their own tests; everything else is fuzzed. The hub runs with
its real speaker, STT and TTS services, a local Home Assistant and a local Claude, so the calls
that reach them are answered for real rather than failing fast.
"""

from __future__ import annotations

import io
import json
import math
import urllib.request
import wave
from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema
from scipy.signal import resample_poly

from tests.support.hub_openapi import OpenApiContract
from tests.support.hub_process import HubProcess
from tests.support.pipeline_client import background_browser
from tests.support.pipeline_stack import PipelineStack, stack_fixture
from tests.support.speech import espeak_pcm
from tests.support.voices import TEST_SENTENCES

pytestmark = pytest.mark.timeout(240)

EXAMPLES_PER_OPERATION = 25
# The lifecycle endpoints end the hub (tested elsewhere); the WebSocket endpoints speak frames
# that schemathesis cannot send (test_fuzz_websockets.py fuzzes them).
NOT_FUZZED = r"^/api/(restart|shutdown|events|audio)$"


def _wav(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


# Rules the document cannot express, so generated requests follow them where valid data is
# wanted: enrolling needs a name (a new profile) or an id (an existing one).
FIXED: dict[str, dict[str, Any]] = {"POST /api/speakers/enroll": {"query": {"name": "Fuzzed"}}}


SPOKEN = [(sentence, voice) for sentence in TEST_SENTENCES for voice in ("en-us+m3", "en-us+f2")]


@cache
def _speech_wav(index: int, rate: int) -> bytes:
    """A real spoken sentence (espeak-ng) at `rate`, as a WAV file."""
    sentence, voice = SPOKEN[index]
    samples = np.frombuffer(espeak_pcm(sentence, voice=voice), "<i2").astype(np.float64)
    samples = samples[14_400:-14_400]  # 0.1 s of the 1 s silences either side: less to send
    if rate != 16_000:
        divisor = math.gcd(rate, 16_000)
        samples = resample_poly(samples, rate // divisor, 16_000 // divisor)
    return _wav(np.clip(samples, -32768, 32767).astype("<i2").tobytes(), rate)


# WAV bodies for /api/audio/file and /api/speakers/{enroll,identify}: real WAV files of a spoken
# sentence at any rate (the hub resamples). The document cannot say how much audio an upload
# needs nor that it must be a voice, so bodies the hub refuses for their content (empty, not
# WAV, noise, too short to enrol) are not generated here; test_hub_bad_input.py and
# test_speaker_bad_input.py send those.
WAV_BODIES = st.builds(
    _speech_wav,
    st.integers(0, len(SPOKEN) - 1),
    st.sampled_from([8000, 16000, 22050, 44100]),
)
schemathesis.openapi.media_type("audio/wav", WAV_BODIES)


# kiwi-stt too: a new stt_model or stt_device is loaded by it before PATCH /api/config answers.
stack = stack_fixture(services=("speaker", "stt", "tts"), clean_log=True)


@pytest.fixture(scope="module", autouse=True)
def listening_browser(stack: PipelineStack) -> Iterator[None]:
    """A browser microphone stays connected, so POST /api/tts/test has somewhere to play
    (without one its 503 `no_audio_output` is right, and not what is fuzzed here)."""
    assert stack.hub is not None
    with background_browser(stack.hub.ws_url("/api/audio")):
        yield


@pytest.fixture(scope="module")
def hub_schema(stack: PipelineStack) -> BaseSchema:
    assert stack.hub is not None
    hub = stack.hub
    loaded = schemathesis.openapi.from_url(
        hub.base_url + "/api/openapi.json", headers=hub.auth_headers
    )
    return loaded.exclude(path_regex=NOT_FUZZED)


def _reset_config(hub: HubProcess, operation: APIOperation) -> None:
    """Put every setting back to its default (null resets one), so the random settings just
    written (a Home Assistant URL that goes nowhere, a voice that does not exist) do not turn
    the next operations' answers into 5xx: those would be right, and not what is under test."""
    schema = operation.definition.raw["requestBody"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    fields = hub_document(hub)["components"]["schemas"][name]["properties"]
    request = urllib.request.Request(
        hub.base_url + "/api/config",
        data=json.dumps(dict.fromkeys(fields)).encode(),
        method="PATCH",
        headers={**hub.auth_headers, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def hub_document(hub: HubProcess) -> dict[str, Any]:
    request = urllib.request.Request(hub.base_url + "/api/openapi.json", headers=hub.auth_headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.load(response))


def _fuzz_operation(
    operation: APIOperation, mode: GenerationMode, stack: PipelineStack
) -> str | None:
    """Run one operation's examples; the failure report, None when every answer was right."""
    assert stack.hub is not None
    hub = stack.hub

    fixed = FIXED.get(operation.label, {}) if mode is GenerationMode.POSITIVE else {}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases every run: a CI failure reproduces locally
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, do not minimise
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def check(case: Case) -> None:
        # A spoken sentence takes a moment to enrol or transcribe on a busy machine; the
        # default 10 s read timeout made that a flaky failure.
        case.call_and_validate(base_url=hub.base_url, headers=hub.auth_headers, timeout=60)

    try:
        check()
        if operation.label == "PATCH /api/config":
            _reset_config(hub, operation)
    except Unsatisfiable:
        # Nothing to break: no parameters and no body (e.g. a negative GET /api/health).
        assert mode is GenerationMode.NEGATIVE, operation.label
    except Exception as err:  # schemathesis raises a group of the checks that failed
        return f"{mode.value} {operation.label}: {err}"[:1500]  # curl lines carry whole WAVs
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(
    hub_schema: BaseSchema, stack: PipelineStack, mode: GenerationMode
) -> None:
    failures = []
    operations = 0
    for result in hub_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        failure = _fuzz_operation(operation, mode, stack)
        if failure is not None:
            failures.append(failure)
    assert operations > 20
    assert not failures, "\n\n".join(failures)


def test_the_hub_is_still_up_and_every_operation_was_fuzzed(stack: PipelineStack) -> None:
    assert stack.hub is not None
    hub = stack.hub
    assert hub.process.poll() is None, hub.log()
    contract = OpenApiContract(hub_document(hub))
    fuzzed = {(o.method, o.template) for o in contract.http_operations()} - {
        ("POST", "/api/restart"),
        ("POST", "/api/shutdown"),
    }
    # The access log names every path requested; each operation's path shows up in it.
    log = hub.log()
    for method, template in sorted(fuzzed):
        prefix = template.split("{", 1)[0]
        assert f'"{method} {prefix}' in log, f"{method} {template} was never called"
