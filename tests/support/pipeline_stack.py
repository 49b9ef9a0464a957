"""The processes a test runs Kiwi with, started one way: Kiwi's Wyoming services on the offline
models, the fake Home Assistant and Claude, and a kiwi-hub wired to them.

- `service_starters` says how to start each service; `start_services` starts several at once
  (they spend most of their start-up importing engines) and stops them all if one fails.
- `start_stack` adds the fakes and the hub; `PipelineStack.stop()` ends every process.
- `stack_fixture(...)` is the pytest fixture a test module declares instead of writing its own:
  `stack = stack_fixture(services=("tts",))`; the conftest's `hub` fixture is `stack.hub`.

Standard library, aiohttp and pytest only, so both test environments use it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_anthropic import FakeAnthropic, ScriptedReply
from tests.support.fake_homeassistant import FakeHomeAssistant
from tests.support.hub_process import HubProcess, start_hub, start_speaker_service
from tests.support.offline_models import (
    PIPER_VOICE_NAME,
    WHISPER_MODEL_NAME,
    populate_models_dir,
)
from tests.support.ports import free_port
from tests.support.wyoming_process import ServiceProcess, start_service

WAKE_WORD = "hey_jarvis"
SERVICES = ("stt", "tts", "wake", "speaker")


def service_starters(
    models_dir: Path,
    log_dir: Path,
    *,
    voices_dir: Path | None = None,
    wake_word: str | None = WAKE_WORD,
    stt_threads: int | None = None,
) -> dict[str, Callable[[], ServiceProcess]]:
    """How to start each Wyoming service on the offline models (call one to start it).

    `voices_dir`: kiwi-tts's voices (default `models_dir/piper`); `wake_word`: the one model
    kiwi-wake loads (None: all of them); `stt_threads`: kiwi-stt's CPU threads.
    """
    stt_args = ["--model", WHISPER_MODEL_NAME, "--data-dir", str(models_dir / "whisper")]
    if stt_threads is not None:
        stt_args += ["--cpu-threads", str(stt_threads)]
    wake_args = ["--data-dir", str(models_dir / "openwakeword"), "--no-download"]
    if wake_word is not None:
        wake_args += ["--wake-word", wake_word]
    tts_args = ["--voice", PIPER_VOICE_NAME, "--data-dir", str(voices_dir or models_dir / "piper")]
    return {
        "stt": lambda: start_service("kiwi-stt", stt_args, log_dir / "kiwi-stt.log"),
        "tts": lambda: start_service("kiwi-tts", tts_args, log_dir / "kiwi-tts.log"),
        "wake": lambda: start_service("kiwi-wake", wake_args, log_dir / "kiwi-wake.log"),
        "speaker": lambda: start_speaker_service(log_dir / "speaker-data", log_dir),
    }


def start_services(
    starters: Mapping[str, Callable[[], ServiceProcess]], names: Iterable[str] = SERVICES
) -> dict[str, ServiceProcess]:
    """Start the services `names` in parallel; if one fails, stop the others and raise."""
    names = tuple(names)
    if not names:
        return {}
    with ThreadPoolExecutor(len(names)) as pool:
        futures = {name: pool.submit(starters[name]) for name in names}
        wait(futures.values())
    started = {name: f.result() for name, f in futures.items() if f.exception() is None}
    failed = [f.exception() for f in futures.values() if f.exception() is not None]
    if failed:
        for service in started.values():
            with contextlib.suppress(Exception):
                service.stop()
        raise failed[0]  # type: ignore[misc]
    return started


def restart_service(service: ServiceProcess) -> ServiceProcess:
    """Start a stopped (or killed) service again on the same port with the same arguments."""
    log_path = service.log_path.with_name(service.log_path.stem + "-restarted.log")
    return start_service(service.command, service.args, log_path, port=service.port)


@dataclass
class PipelineStack:
    data_dir: Path
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    shared: dict[str, ServiceProcess] = field(default_factory=dict)  # another stack's; not stopped
    claude: FakeAnthropic | None = None
    homeassistant: FakeHomeAssistant | None = None
    hub: HubProcess | None = None

    def uri(self, name: str) -> str:
        """Where the hub finds service `name` (a port nothing listens on if not started)."""
        service = self.services.get(name) or self.shared.get(name)
        return service.uri if service else f"tcp://127.0.0.1:{free_port()}"

    def stop(self) -> None:
        if self.hub is not None:
            self.hub.stop()
        for service in self.services.values():
            with contextlib.suppress(Exception):
                service.stop()
        for fake in (self.claude, self.homeassistant):
            if fake is not None:
                fake.stop()


def hub_env(stt_uri: str, wake_uri: str, **extra: str) -> dict[str, str]:
    """A hub's environment in front of kiwi-stt and kiwi-wake: the wake word `hey_jarvis` on
    openwakeword, unknown voices may run commands (tests use unenrolled voices), no host audio,
    and no Claude, Home Assistant or Supervisor unless `extra` names them."""
    return {
        "KIWI_STT_URI": stt_uri,
        "KIWI_WAKE_URI": wake_uri,
        "KIWI_WAKE_WORD": WAKE_WORD,
        "KIWI_WAKE_WORD_ENGINE": "openwakeword",
        "KIWI_UNKNOWN_SPEAKER_POLICY": "allow",
        "KIWI_HOST_AUDIO": "off",
        "ANTHROPIC_API_KEY": "",
        "KIWI_ANTHROPIC_API_KEY": "",
        "KIWI_HA_URL": "",
        "KIWI_HA_TOKEN": "",
        "SUPERVISOR_TOKEN": "",
        **extra,
    }


def start_stack(
    models_dir: Path,
    data_dir: Path,
    *,
    services: tuple[str, ...],
    claude: bool = True,
    homeassistant: bool = True,
    env: Mapping[str, str] | None = None,
    shared: Mapping[str, ServiceProcess] | None = None,
) -> PipelineStack:
    """Start `services` (stt, tts, wake, speaker), the fakes and a hub wired to all of them.

    The hub listens for the wake word `hey_jarvis` on openwakeword, and lets unknown voices
    run commands (tests use unenrolled espeak voices) unless `env` says otherwise.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = PipelineStack(data_dir, shared=dict(shared or {}))
    try:
        stack.services = start_services(service_starters(models_dir, data_dir), services)
        env_of_hub = hub_env(stack.uri("stt"), stack.uri("wake"))
        if claude:
            stack.claude = FakeAnthropic()
            stack.claude.start()
            env_of_hub |= {
                "ANTHROPIC_API_KEY": stack.claude.api_key,
                "ANTHROPIC_BASE_URL": stack.claude.url,
            }
        if homeassistant:
            stack.homeassistant = FakeHomeAssistant()
            stack.homeassistant.start()
            env_of_hub |= {
                "KIWI_HA_URL": stack.homeassistant.url,
                "KIWI_HA_TOKEN": stack.homeassistant.token,
            }
        stack.hub = start_hub(
            data_dir / "hub",
            env={**env_of_hub, **(env or {})},
            speaker=stack.services.get("speaker") or stack.shared.get("speaker") or False,
            tts_uri=stack.uri("tts"),
        )
    except BaseException:
        stack.stop()
        raise
    return stack


def offline_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's `models/` directory of offline models (symlinks into the test cache)."""
    models_dir = tmp_path_factory.getbasetemp() / "kiwi-offline-models"
    if not models_dir.is_dir():
        populate_models_dir(models_dir)
    return models_dir


EnvFor = Callable[[pytest.FixtureRequest], Mapping[str, str]]


def stack_fixture(
    *,
    services: tuple[str, ...] = (),
    claude: bool = True,
    homeassistant: bool = True,
    env: Mapping[str, str] | EnvFor | None = None,
    claude_reply: Callable[[dict[str, Any]], ScriptedReply] | None = None,
    requires: tuple[str, ...] = (),
    clean_log: bool = False,
    scope: str = "module",
    name: str = "stack",
) -> Any:
    """A pytest fixture `name` that starts a `PipelineStack` for its scope and stops it after.

    `env` is the hub's extra environment, or a function of the fixture request for an
    environment that needs other fixtures (`request.getfixturevalue("telegram")`); `requires`
    names fixtures to set up first (`socket_enabled` in Home Assistant's harness, with
    `scope="function"`);
    `claude_reply` scripts the fake Claude; `clean_log` fails the module when the hub logged a
    traceback.
    """

    @pytest.fixture(scope=scope, name=name)  # type: ignore[call-overload, misc]
    def fixture(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[PipelineStack]:
        for required in requires:
            request.getfixturevalue(required)
        hub_env = env(request) if callable(env) else env
        label = re.sub(r"[^\w-]+", "-", request.node.name.removesuffix(".py"))[:60]
        running = start_stack(
            offline_models_dir(tmp_path_factory),
            tmp_path_factory.mktemp(label),
            services=services,
            claude=claude,
            homeassistant=homeassistant,
            env=hub_env,
        )
        if claude_reply is not None:
            assert running.claude is not None
            running.claude.reply = claude_reply
        yield running
        running.stop()
        if clean_log:
            assert running.hub is not None
            assert "Traceback" not in running.hub.log(), running.hub.log()

    return fixture
