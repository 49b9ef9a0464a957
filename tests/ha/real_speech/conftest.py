"""The real-speech tier: Kiwi on its default real models (Whisper base, piper joe, openWakeWord
hey_jarvis, resemblyzer), fed deterministic real voices (piper joe and espeak-ng through `sox -D`,
pocketsphinx-testdata's human reader).

One warm stack serves the whole tier: the four Wyoming services start once per session (loading
the models is most of the tier's cost), with one hub and a fake Claude in front of them. The
spoken home command needs a hub holding the test's own Home Assistant token, so that test starts a
hub of its own in front of the same services.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import pytest_socket

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.hub_process import HubProcess, start_hub
from tests.support.pipeline_stack import start_services
from tests.support.real_speech import real_hub_env, real_service_starters
from tests.support.wyoming_process import ServiceProcess

RealServices = dict[str, ServiceProcess]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is in the tier (`-m real_speech` runs it alone, `-m 'not real_speech'`
    leaves it out)."""
    for item in items:
        if "real_speech" in item.path.parts:
            item.add_marker(pytest.mark.real_speech)
            item.add_marker(pytest.mark.timeout(300))


@contextmanager
def sockets_allowed() -> Iterator[None]:
    """Let a session fixture reach 127.0.0.1 (HA's harness blocks sockets around each test)."""
    pytest_socket.enable_socket()
    try:
        yield
    finally:
        pytest_socket.socket_allow_hosts(["127.0.0.1"])
        pytest_socket.disable_socket(allow_unix_socket=True)


@pytest.fixture(scope="session")
def real_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServices]:
    """kiwi-stt, kiwi-tts, kiwi-wake and kiwi-speaker on the real models, started at once."""
    starters = real_service_starters(tmp_path_factory.mktemp("real-services"))
    with sockets_allowed():
        started = start_services(starters)
    yield started
    for service in started.values():
        service.stop()


def start_real_hub(data_dir: object, services: RealServices, **env: str) -> HubProcess:
    return start_hub(
        data_dir,  # type: ignore[arg-type]
        speaker=services["speaker"],
        tts_uri=services["tts"].uri,
        env=real_hub_env(services, **env),
    )


@pytest.fixture(scope="session")
def real_claude() -> Iterator[FakeAnthropic]:
    with sockets_allowed():
        fake = FakeAnthropic()
        fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def real_hub(
    tmp_path_factory: pytest.TempPathFactory,
    real_services: RealServices,
    real_claude: FakeAnthropic,
) -> Iterator[HubProcess]:
    """The tier's hub: the real services behind it, the fake Claude answering."""
    with sockets_allowed():
        hub = start_real_hub(
            tmp_path_factory.mktemp("real-hub"),
            real_services,
            ANTHROPIC_API_KEY=real_claude.api_key,
            ANTHROPIC_BASE_URL=real_claude.url,
        )
    yield hub
    hub.stop(stop_speaker=False)
