"""Fixtures of the HA tests: real Kiwi processes on 127.0.0.1 and the integration set up in HA.

One hub (with a real kiwi-speaker and kiwi-tts behind it) is shared by the whole session and put
back into a known state before each test that uses it; tests that restart a hub or change its
token start their own with `start_kiwi_hub`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import PropertyMock, patch

import aiohttp
import pytest
import pytest_socket
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.kiwi import PLATFORMS
from custom_components.kiwi.api import KiwiClient
from tests.ha.kiwi_common import (
    SECOND_VOICE,
    SPEAKER_VOICES,
    WyomingServices,
    browser_speaker,
    enroll,
    entry_for,
    hub_client_for,
    setup_entry,
)
from tests.support import real_models
from tests.support.hub_process import HubProcess, start_hub
from tests.support.offline_models import PIPER_VOICE_NAME, piper_voice_path
from tests.support.pipeline_client import AudioClient
from tests.support.pipeline_stack import offline_models_dir, service_starters, start_services
from tests.support.wyoming_process import ServiceProcess, start_service


@contextmanager
def sockets_allowed() -> Iterator[None]:
    """Let a session fixture reach 127.0.0.1 (HA's harness blocks sockets around each test)."""
    pytest_socket.enable_socket()
    try:
        yield
    finally:
        pytest_socket.socket_allow_hosts(["127.0.0.1"])
        pytest_socket.disable_socket(allow_unix_socket=True)


def pytest_configure(config: pytest.Config) -> None:
    """Register this directory's marker."""
    config.addinivalue_line(
        "markers", "fresh_hub: the test gets a new hub instead of the session's (snapshots)"
    )


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom_components/kiwi (it overrides HA core's legacy `kiwi` lock)."""


def two_voices(folder: Path) -> Path:
    """The tiny piper voice under its own name and a second one, so the hub offers a choice."""
    voice = piper_voice_path()
    for name in (PIPER_VOICE_NAME, SECOND_VOICE):
        (folder / f"{name}.onnx").symlink_to(voice)
        (folder / f"{name}.onnx.json").symlink_to(voice.with_name(voice.name + ".json"))
    return folder


@pytest.fixture(scope="session")
def kiwi_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WyomingServices]:
    """kiwi-tts (tiny piper voice), kiwi-wake (openWakeWord's real models), kiwi-stt (tiny
    Whisper: its transcripts are not words) and kiwi-speaker (resemblyzer), started at once."""
    starters = service_starters(
        offline_models_dir(tmp_path_factory),
        tmp_path_factory.mktemp("kiwi-services"),
        voices_dir=two_voices(tmp_path_factory.mktemp("voices")),
        wake_word=None,  # every pretrained model, as HA's Wyoming integration lists them
        stt_threads=1,
    )
    # Loading four engines one after the other is the slowest part of the session's start.
    with sockets_allowed():
        started = start_services(starters)
    services = WyomingServices(**started)
    yield services
    for service in started.values():
        service.stop()


@pytest.fixture(scope="session")
def real_stt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """kiwi-stt on Whisper base, for tests whose commands must be understood word for word."""
    root = tmp_path_factory.mktemp("real-stt")
    with sockets_allowed():
        stt = start_service(
            "kiwi-stt",
            ["--model", real_models.WHISPER_MODEL, "--data-dir", str(real_models.whisper_dir())],
            root / "kiwi-stt.log",
        )
    yield stt
    stt.stop()


def start_full_hub(data_dir: Path, services: WyomingServices) -> HubProcess:
    """A hub with all four Wyoming services behind it: the whole voice pipeline."""
    return start_hub(
        data_dir,
        speaker=services.speaker,
        tts_uri=services.tts.uri,
        args=["--wake-uri", services.wake.uri, "--stt-uri", services.stt.uri],
    )


@pytest.fixture(scope="session")
def kiwi_hub_process(
    tmp_path_factory: pytest.TempPathFactory,
    kiwi_services: WyomingServices,
) -> Iterator[HubProcess]:
    """The session's hub."""
    with sockets_allowed():
        hub = start_full_hub(tmp_path_factory.mktemp("kiwi-hub"), kiwi_services)
    yield hub
    hub.stop(stop_speaker=False)


@pytest.fixture
async def hub_session(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session of the test itself (not Home Assistant's)."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def kiwi_hub(
    request: pytest.FixtureRequest,
    kiwi_hub_process: HubProcess,
    kiwi_services: WyomingServices,
    hub_session: aiohttp.ClientSession,
    tmp_path: Path,
) -> AsyncIterator[HubProcess]:
    """The session's hub, back in its initial state: default soul, English, no speakers.

    Tests marked `fresh_hub` (snapshots: nothing a test before left behind may show, such as
    the last turn's metrics) get a hub of their own in front of the same services.
    """
    if request.node.get_closest_marker("fresh_hub") is None:
        hub = kiwi_hub_process
    else:
        hub = start_full_hub(tmp_path / "fresh-hub", kiwi_services)
    client = hub_client_for(hub, hub_session)
    await client.set_soul("default")
    await client.set_language("en")
    for profile in await client.speakers():
        await client.delete_speaker(profile.id)
    yield hub
    if hub is not kiwi_hub_process:
        hub.stop(stop_speaker=False)


@pytest.fixture
async def listening_browser(
    kiwi_hub: HubProcess, hub_session: aiohttp.ClientSession
) -> AsyncIterator[AudioClient]:
    """A browser microphone connected to the test's hub: Kiwi has something to speak on."""
    async with browser_speaker(kiwi_hub, hub_session) as browser:
        yield browser


@pytest.fixture
async def hub_client(kiwi_hub: HubProcess, hub_session: aiohttp.ClientSession) -> KiwiClient:
    """The test's own client of the session hub, to make the hub do things."""
    return hub_client_for(kiwi_hub, hub_session)


@pytest.fixture
def start_kiwi_hub(tmp_path: Path, socket_enabled: None) -> Iterator[Callable[..., HubProcess]]:
    """Start hubs of the test's own (no speaker or TTS service behind them); all stopped after."""
    started: list[HubProcess] = []

    def start(**kwargs: object) -> HubProcess:
        data_dir = tmp_path / f"hub-{len(started)}"
        hub = start_hub(data_dir, speaker=False, **kwargs)  # type: ignore[arg-type]
        started.append(hub)
        return hub

    yield start
    for hub in started:
        hub.stop()


@pytest.fixture
def hub_speakers() -> list[str]:
    """Names of voices enrolled on the hub before the integration is set up (none by default)."""
    return []


@pytest.fixture
async def speaker_ids(hub_client: KiwiClient, hub_speakers: list[str]) -> dict[str, str]:
    """Enroll `hub_speakers` with distinct espeak voices; name -> profile id."""
    return {
        name: await enroll(hub_client, name, voice)
        for name, voice in zip(hub_speakers, SPEAKER_VOICES, strict=False)
    }


@pytest.fixture
def mock_config_entry(kiwi_hub: HubProcess, speaker_ids: dict[str, str]) -> MockConfigEntry:
    """A config entry for the session hub (after `hub_speakers` were enrolled)."""
    return entry_for(kiwi_hub)


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Every entity enabled, also those the integration disables by default (as in HA core)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def platforms() -> list[Platform]:
    """The platforms `init_integration` sets up; a platform's test module narrows it."""
    return list(PLATFORMS)


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, platforms: list[Platform]
) -> AsyncIterator[MockConfigEntry]:
    """The integration set up against the session hub; unloaded after the test."""
    with patch("custom_components.kiwi.PLATFORMS", platforms):
        await setup_entry(hass, mock_config_entry)
        yield mock_config_entry
        await hass.config_entries.async_unload(mock_config_entry.entry_id)
        await hass.async_block_till_done()
