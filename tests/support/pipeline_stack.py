"""The processes a voice pipeline test runs: Kiwi's Wyoming services on the offline models, the
fake Home Assistant and Claude, and a kiwi-hub wired to them.

Services start in parallel (they spend most of their start-up importing engines); every
process is stopped by `PipelineStack.stop()`, which module fixtures call in their finalizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.fake_anthropic import FakeAnthropic
from tests.support.fake_homeassistant import FakeHomeAssistant
from tests.support.hub_process import HubProcess, start_hub, start_speaker_service
from tests.support.offline_models import PIPER_VOICE_NAME, WHISPER_MODEL_NAME
from tests.support.ports import free_port
from tests.support.wyoming_process import ServiceProcess, start_service

WAKE_WORD = "hey_jarvis"


def service_starters(models_dir: Path, log_dir: Path) -> dict[str, Callable[[], ServiceProcess]]:
    """How to start each Wyoming service on the offline models (call one to start it)."""
    return {
        "stt": lambda: start_service(
            "kiwi-stt",
            ["--model", WHISPER_MODEL_NAME, "--data-dir", str(models_dir / "whisper")],
            log_dir / "kiwi-stt.log",
        ),
        "tts": lambda: start_service(
            "kiwi-tts",
            ["--voice", PIPER_VOICE_NAME, "--data-dir", str(models_dir / "piper")],
            log_dir / "kiwi-tts.log",
        ),
        "wake": lambda: start_service(
            "kiwi-wake",
            [
                "--data-dir",
                str(models_dir / "openwakeword"),
                "--wake-word",
                WAKE_WORD,
                "--no-download",
            ],
            log_dir / "kiwi-wake.log",
        ),
        "speaker": lambda: start_speaker_service(log_dir / "speaker-data", log_dir),
    }


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
        starters = service_starters(models_dir, data_dir)
        with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
            futures = {name: pool.submit(starters[name]) for name in services}
            for name, future in futures.items():
                stack.services[name] = future.result()
        hub_env = {
            "KIWI_STT_URI": stack.uri("stt"),
            "KIWI_WAKE_URI": stack.uri("wake"),
            "KIWI_WAKE_WORD": WAKE_WORD,
            "KIWI_WAKE_WORD_ENGINE": "openwakeword",
            "KIWI_UNKNOWN_SPEAKER_POLICY": "allow",
            "KIWI_HOST_AUDIO": "off",
            "ANTHROPIC_API_KEY": "",
            "KIWI_ANTHROPIC_API_KEY": "",
            "KIWI_HA_URL": "",
            "KIWI_HA_TOKEN": "",
            "SUPERVISOR_TOKEN": "",
        }
        if claude:
            stack.claude = FakeAnthropic()
            stack.claude.start()
            hub_env |= {
                "ANTHROPIC_API_KEY": stack.claude.api_key,
                "ANTHROPIC_BASE_URL": stack.claude.url,
            }
        if homeassistant:
            stack.homeassistant = FakeHomeAssistant()
            stack.homeassistant.start()
            hub_env |= {
                "KIWI_HA_URL": stack.homeassistant.url,
                "KIWI_HA_TOKEN": stack.homeassistant.token,
            }
        stack.hub = start_hub(
            data_dir / "hub",
            env={**hub_env, **(env or {})},
            speaker=stack.services.get("speaker") or stack.shared.get("speaker") or False,
            tts_uri=stack.uri("tts"),
        )
    except BaseException:
        stack.stop()
        raise
    return stack
