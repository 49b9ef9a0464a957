"""schemathesis against the hub's own /api/openapi.json: every operation, with the token.

Positive and negative cases are generated from the document; every answer must be documented
(status, content type, body schema, headers) and none may be a 5xx. /api/restart and
/api/shutdown end the hub and have their own tests; everything else is fuzzed. The hub runs with
its real speaker and TTS services, a local Home Assistant and a local Claude, so the calls
that reach them are answered for real rather than failing fast.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema

from tests.support.hub_openapi import OpenApiContract
from tests.support.pipeline_stack import PipelineStack, start_stack

pytestmark = pytest.mark.timeout(240)

EXAMPLES_PER_OPERATION = 25
LIFECYCLE = r"^/api/(restart|shutdown)$"


@pytest.fixture(scope="module")
def stack(
    offline_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PipelineStack]:
    stack = start_stack(
        offline_models_dir,
        tmp_path_factory.mktemp("fuzz-openapi"),
        services=("speaker", "tts"),
    )
    yield stack
    stack.stop()
    assert stack.hub is not None
    assert "Traceback" not in stack.hub.log(), stack.hub.log()


@pytest.fixture(scope="module")
def hub_schema(stack: PipelineStack) -> BaseSchema:
    assert stack.hub is not None
    hub = stack.hub
    loaded = schemathesis.openapi.from_url(
        hub.base_url + "/api/openapi.json", headers=hub.auth_headers
    )
    return loaded.exclude(path_regex=LIFECYCLE)


def _fuzz_operation(
    operation: APIOperation, mode: GenerationMode, stack: PipelineStack
) -> str | None:
    """Run one operation's examples; the failure report, None when every answer was right."""
    assert stack.hub is not None
    hub = stack.hub

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same cases every run: a CI failure reproduces locally
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, do not minimise
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Case) -> None:
        case.call_and_validate(base_url=hub.base_url, headers=hub.auth_headers)

    try:
        check()
    except Exception as err:  # schemathesis raises a group of the checks that failed
        return f"{mode.value} {operation.label}: {err}"[:3000]
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
    request = urllib.request.Request(hub.base_url + "/api/openapi.json", headers=hub.auth_headers)
    with urllib.request.urlopen(request) as response:
        contract = OpenApiContract(json.load(response))
    fuzzed = {(o.method, o.template) for o in contract.operations} - {
        ("POST", "/api/restart"),
        ("POST", "/api/shutdown"),
    }
    # The access log names every path requested; each operation's path shows up in it.
    log = hub.log()
    for method, template in sorted(fuzzed):
        prefix = template.split("{", 1)[0]
        assert f'"{method} {prefix}' in log, f"{method} {template} was never called"
