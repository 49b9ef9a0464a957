"""Smoke test of the built add-on image, run by `make test-image` (not by `make test`).

The image `make image` built (local/kiwi-addon:<version>, KIWI_IMAGE overrides) runs as the
Supervisor would run it: /data with an options.json, SUPERVISOR_TOKEN, and a fake Supervisor on
the host (tests/support/fake_supervisor.py: /discovery, /addons/self/info, the Core API proxy in
front of a fake Home Assistant). HA's base image (s6-overlay) cannot be pulled here, so a thin
test layer (tests/image/standin) adds a stand-in /init and /command/with-contenv that start the
add-on's own s6 scripts; docs/addon.md says what that does not prove.

Everything runs with `--network host` against the private dockerd of scripts/image/with-dockerd.sh
(DOCKER, DOCKER_HOST), on free ports bound to 127.0.0.1 only. The spoken turn uses the models
inside the image: nothing from the checkout's models/ is mounted.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from kiwi_voice.launcher.settings import PORT_VARIABLES
from tests.support.fake_supervisor import FakeSupervisor
from tests.support.pipeline_client import AudioClient, EventLog
from tests.support.ports import free_ports
from tests.support.pulse import start_pulse
from tests.support.real_speech import rms
from tests.support.speech import espeak_pcm
from tests.support.waiting import until_sync

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]
STANDIN = Path(__file__).parent / "standin"
ADDON_CONFIG = yaml.safe_load((ROOT / "addon" / "config.yaml").read_text(encoding="utf-8"))
VERSION = ADDON_CONFIG["version"]
IMAGE = os.environ.get("KIWI_IMAGE", f"local/kiwi-addon:{VERSION}")
STANDIN_IMAGE = f"{IMAGE}-standin"
COMMAND = "turn on the kitchen light"
SILENCE = b"\x00\x00" * 16000  # one second at 16 kHz
# First start on a loaded 2-core machine: every service loads its real model.
START_S = 300.0
STOP_LIMIT_S = 10.0


def docker(
    *args: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    binary = os.environ.get("DOCKER")
    if not binary or not os.environ.get("DOCKER_HOST"):
        pytest.fail("run through `make test-image` (scripts/image/with-dockerd.sh sets DOCKER)")
    return subprocess.run(
        [binary, *args], check=check, capture_output=True, text=True, timeout=timeout
    )


@dataclass
class Addon:
    """The running container, its /data on the host, and where its ports are."""

    name: str
    data_dir: Path
    ports: dict[str, int]
    supervisor: FakeSupervisor

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['hub']}"

    def token(self) -> str:
        return (self.data_dir / "api_token").read_text(encoding="utf-8").strip()

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.ports['hub']}{path}?token={self.token()}"

    def logs(self) -> str:
        result = docker("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict[str, Any]:
        out = docker("inspect", "-f", "{{json .State}}", self.name).stdout
        state: dict[str, Any] = json.loads(out)
        return state

    def health(self) -> dict[str, Any] | None:
        """GET /api/health (no token), or None while the hub does not answer."""
        if not self.state()["Running"]:
            raise AssertionError(f"the container exited:\n{self.logs()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{self.hub_url}/api/health", timeout=5) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except OSError:
            return None

    def wait_until_up(self, discoveries_before: int) -> dict[str, Any]:
        """Every port answers and both discovery messages of this start arrived."""
        health = until_sync(self.health, "the hub answers /api/health", timeout_s=START_S)
        until_sync(
            lambda: len(self.supervisor.discovered()) >= discoveries_before + 2,
            lambda: (
                f"two discovery messages; got {self.supervisor.discovered()}\n"
                + self.logs()[-3000:]
            ),
            timeout_s=START_S,
        )
        return health


def _options() -> dict[str, Any]:
    """The add-on's defaults (config.yaml), with the wake word a model in the image, and the
    test's voice (enrolled by nobody, so unknown) allowed to control the home."""
    options = dict(ADDON_CONFIG["options"])
    options["wake_word"] = "hey_jarvis"
    options["unknown_speaker_policy"] = "allow"
    return options


@pytest.fixture(scope="module")
def standin_image() -> str:
    built = docker("image", "inspect", IMAGE, check=False)
    if built.returncode != 0:
        pytest.fail(f"no image {IMAGE}: `make test-image` builds it first")
    docker(
        "build", "--network", "host", "--build-arg", f"KIWI_IMAGE={IMAGE}",
        "-t", STANDIN_IMAGE, str(STANDIN),
    )  # fmt: skip
    return STANDIN_IMAGE


@pytest.fixture(scope="module")
def addon(standin_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Addon]:
    data_dir = tmp_path_factory.mktemp("addon-data")
    (data_dir / "options.json").write_text(json.dumps(_options()), encoding="utf-8")
    ports = dict(zip(PORT_VARIABLES, free_ports(len(PORT_VARIABLES)), strict=True))
    name = f"kiwi-smoke-{secrets.token_hex(4)}"
    # --network host: the container's hostname is the host's, so is the advertised one.
    supervisor = FakeSupervisor(hostname=os.uname().nodename)
    supervisor.start()
    env = {
        "SUPERVISOR_TOKEN": supervisor.token,
        "KIWI_SUPERVISOR_URL": supervisor.url,
        "KIWI_BIND_HOST": "127.0.0.1",
        **{PORT_VARIABLES[process][0]: str(port) for process, port in ports.items()},
    }
    env_args = [arg for key, value in env.items() for arg in ("-e", f"{key}={value}")]
    docker(
        "run", "-d", "--name", name, "--network", "host", "-v", f"{data_dir}:/data",
        *env_args, standin_image,
    )  # fmt: skip
    running = Addon(name, data_dir, ports, supervisor)
    try:
        yield running
    finally:
        print(running.logs()[-6000:])
        docker("rm", "-f", name, check=False)
        supervisor.stop()


@pytest.fixture(scope="module")
def first_start(addon: Addon) -> dict[str, Any]:
    return addon.wait_until_up(discoveries_before=0)


def test_the_models_ship_inside_and_user_folders_come_first() -> None:
    out = docker("run", "--rm", "--network", "none", IMAGE, "kiwi", "print-config").stdout
    config = json.loads(out)
    assert config["model_roots"] == [
        "/config/models", "/share/kiwi/models", "/data/models", "/opt/kiwi/models",
    ]  # fmt: skip
    verify = docker(
        "run", "--rm", "--network", "none", IMAGE,
        "python", "-m", "kiwi_voice.model_pack", "verify", "/opt/kiwi/models",
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # No compiler, no pip cache and no build-stage CA left in the image.
    leftovers = docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", IMAGE, "-c",
        "ls /usr/bin/gcc /usr/bin/cc /root/.cache/pip /usr/local/share/ca-certificates/*.crt "
        "/opt/kiwi/bin/pip 2>/dev/null; true",
    )  # fmt: skip
    assert leftovers.stdout.strip() == ""


def test_every_service_starts_and_discovery_is_posted(
    addon: Addon, first_start: dict[str, Any]
) -> None:
    assert first_start["status"] == "ok"
    assert first_start["version"] == VERSION
    logs = addon.logs()
    for process in PORT_VARIABLES:
        assert f"stand-in init: starting kiwi-{process}" in logs
    for port in addon.ports.values():  # every process listens
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    kiwi, wyoming = sorted(addon.supervisor.discovered()[:2], key=lambda m: m["service"])
    host = addon.supervisor.hostname
    instance_id = (addon.data_dir / "instance_id").read_text(encoding="utf-8").strip()
    assert kiwi == {
        "service": "kiwi",
        "config": {
            "host": host, "port": addon.ports["hub"], "token": addon.token(),
            "instance_id": instance_id,
        },
    }  # fmt: skip
    assert instance_id == first_start["instance_id"]
    assert wyoming == {
        "service": "wyoming",
        "config": {"uri": f"tcp://{host}:{addon.ports['combined']}"},
    }
    assert addon.supervisor.refused == []


async def _transcribe(port: int, pcm: bytes, rate: int) -> str:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=1).event())
        for offset in range(0, len(pcm), 3200):
            chunk = AudioChunk(rate=rate, width=2, channels=1, audio=pcm[offset : offset + 3200])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        while True:
            event = await asyncio.wait_for(client.read_event(), 120)
            assert event is not None, "kiwi-stt closed the connection"
            if Transcript.is_type(event.type):
                return Transcript.from_event(event).text


def _words(text: str) -> list[str]:
    return "".join(c if c.isalnum() else " " for c in text.lower()).split()


async def test_a_spoken_turn_is_heard_and_answered_by_the_models_inside(
    addon: Addon, first_start: dict[str, Any]
) -> None:
    utterance = espeak_pcm("hey jarvis") + espeak_pcm(COMMAND)
    async with (
        aiohttp.ClientSession() as session,
        EventLog.connect(session, addon.ws_url("/api/events")) as events,
        AudioClient.connect(session, addon.ws_url("/api/audio")) as microphone,
    ):
        await microphone.send_audio(utterance)
        await microphone.send_audio(SILENCE)
        await events.wait("TURN_METRICS", wait_s=180)
        await events.wait("TTS_FINISHED", wait_s=30)

    wake = events.of("WAKE_WORD_DETECTED")[0]
    assert wake["text"] == "hey_jarvis"
    heard = events.of("SPEECH_RECOGNIZED")[0]["text"]
    assert {"kitchen", "light"} <= set(_words(heard)), heard
    # Routed through the Supervisor's Core API proxy to Home Assistant, which answered.
    assert addon.supervisor.homeassistant.texts()[-1] == heard
    reply_pcm = b"".join(r.audio for r in microphone.received if r.audio is not None)
    finished = events.of("TTS_FINISHED")[0]
    assert abs(len(reply_pcm) - finished["audio_seconds"] * 32000) < 64
    assert len(reply_pcm) > 32000 // 2, "at least half a second of reply audio"
    # The reply audio says the reply: joe's voice through the image's own Whisper.
    spoken = await _transcribe(addon.ports["stt"], reply_pcm, 16000)
    assert {"turned", "kitchen", "light"} <= set(_words(spoken)), spoken


def test_data_survives_a_restart_and_stop_is_clean(
    addon: Addon, first_start: dict[str, Any]
) -> None:
    token = addon.token()
    updated = _hub_request(addon, "PATCH", "/api/config", {"allow_nsfw": True})
    assert updated["updated"] == {"allow_nsfw": True}

    started = time.monotonic()
    docker("stop", "-t", str(int(STOP_LIMIT_S)), addon.name)
    stop_seconds = time.monotonic() - started
    state = addon.state()
    print(f"docker stop took {stop_seconds:.1f} s, exit code {state['ExitCode']}")
    assert stop_seconds < STOP_LIMIT_S, addon.logs()[-3000:]
    assert state["ExitCode"] == 0, addon.logs()[-3000:]  # 137 would be docker's SIGKILL
    assert not state["OOMKilled"]
    assert "stand-in init: every service has exited" in addon.logs()

    before = len(addon.supervisor.discovered())
    docker("start", addon.name)
    health = addon.wait_until_up(discoveries_before=before)
    assert health["instance_id"] == first_start["instance_id"]
    assert addon.token() == token
    assert _hub_request(addon, "GET", "/api/config")["allow_nsfw"] is True
    rediscovered = {m["service"]: m for m in addon.supervisor.discovered()[before:]}
    assert rediscovered["kiwi"]["config"]["token"] == token


def _hub_request(addon: Addon, method: str, path: str, body: Any = None) -> Any:
    """An authorised request to the hub; the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {addon.token()}", "Content-Type": "application/json"}
    request = urllib.request.Request(
        f"{addon.hub_url}{path}", data=data, method=method, headers=headers
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


# What the Supervisor mounts at /etc/asound.conf for an add-on with `audio: true`: ALSA's
# default device is the PulseAudio server that PULSE_SERVER names.
SUPERVISOR_ASOUND = "pcm.!default { type pulse }\nctl.!default { type pulse }\n"
TONE_PLAYER = """
import numpy, sounddevice
tone = 0.3 * numpy.sin(2 * numpy.pi * 440 * numpy.arange(16000) / 16000)
sounddevice.play(tone.astype(numpy.float32), 16000, blocking=True)
print(sounddevice.query_devices(kind="output")["name"])
"""


def test_the_host_speaker_plays_into_pulseaudio(tmp_path: Path) -> None:
    """The image's PortAudio → ALSA pulse plugin → a real PulseAudio server on the host: a tone
    played in the container is recorded from the server's speaker sink."""
    pulse = start_pulse(tmp_path / "pulse")
    try:
        (tmp_path / "asound.conf").write_text(SUPERVISOR_ASOUND, encoding="utf-8")
        recording = tmp_path / "heard.wav"
        with pulse.recording(recording):
            played = docker(
                "run", "--rm", "--network", "none",
                "-v", f"{pulse.socket}:/run/audio/pulse.sock",
                "-v", f"{tmp_path / 'asound.conf'}:/etc/asound.conf:ro",
                "-e", "PULSE_SERVER=unix:/run/audio/pulse.sock",
                IMAGE, "python", "-c", TONE_PLAYER,
            )  # fmt: skip
        assert played.returncode == 0, played.stdout + played.stderr
        with wave.open(str(recording), "rb") as heard:
            pcm = heard.readframes(heard.getnframes())
        assert rms(pcm) > 1000, "the tone never reached PulseAudio"
    finally:
        pulse.stop()
