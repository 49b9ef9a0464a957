"""A real PulseAudio server of a test's own: what the add-on's `audio: true` gives the hub.

Debian's `pulseaudio` runs as a user daemon with its own runtime dir, home and socket (nothing
of the machine's own sound, if it has any, is touched), and two null sinks:

- `kiwi_speaker`, the default sink: what the hub plays lands here; `parecord` on its monitor
  (`kiwi_speaker.monitor`) records what Kiwi said;
- `kiwi_mic`: `paplay` into it is the room talking; its monitor (`kiwi_mic.monitor`) is the
  default source, so it is the hub's microphone.

The hub reaches it as the add-on does: `PULSE_SERVER` names the socket, PortAudio opens ALSA's
`default` device, which Debian's ALSA pulse plugin points at a running PulseAudio. `make setup`
installs pulseaudio, pulseaudio-utils, libportaudio2 and libasound2-plugins
(scripts/setup-system.sh); a machine without them fails here with that command, never skips.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.waiting import until_sync

SPEAKER_SINK = "kiwi_speaker"
MIC_SINK = "kiwi_mic"
RATE = 16_000
_TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")


class PulseMissing(RuntimeError):
    pass


@dataclass
class PulseServer:
    root: Path
    process: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "native"

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs to use this server (and only this one)."""
        return {
            "PULSE_SERVER": f"unix:{self.socket}",
            "PULSE_RUNTIME_PATH": str(self.root / "run"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "PULSE_COOKIE": str(self.root / "cookie"),
        }

    def log(self) -> str:
        return (self.root / "pulseaudio.log").read_text(errors="replace")

    def run(self, *command: str) -> str:
        done = subprocess.run(
            command,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stderr}\n{self.log()}")
        return done.stdout

    def pactl(self, *args: str) -> str:
        return self.run("pactl", *args)

    def play_into_microphone(self, wav: Path) -> None:
        """The room says `wav`: played into the sink whose monitor is the hub's microphone.
        Returns once PulseAudio has played it all."""
        self.run("paplay", f"--device={MIC_SINK}", str(wav))

    @contextlib.contextmanager
    def recording(self, target: Path, source: str = f"{SPEAKER_SINK}.monitor") -> Iterator[Path]:
        """Record `source` (default: what the hub played) into the WAV file `target` while the
        block runs (16 kHz mono s16)."""
        command = [
            "parecord", f"--device={source}", f"--rate={RATE}", "--channels=1",
            "--format=s16le", "--file-format=wav", str(target),
        ]  # fmt: skip
        recorder = subprocess.Popen(command, env={**os.environ, **self.env}, stderr=subprocess.PIPE)
        try:
            # parecord has connected once the server lists its stream.
            until_sync(
                lambda: "parecord" in self.pactl("list", "source-outputs"),
                "parecord recording",
                timeout_s=10,
            )
            yield target
        finally:
            recorder.terminate()  # SIGTERM: parecord finishes the WAV header and exits
            recorder.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_pulse(root: Path) -> PulseServer:
    """Start a PulseAudio server under `root` with the two null sinks; ready when it answers."""
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        raise PulseMissing(
            f"{', '.join(missing)} not found: run `make setup` (it installs pulseaudio, "
            "pulseaudio-utils, libportaudio2 and libasound2-plugins)"
        )
    for folder in ("run", "home"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    script = root / "kiwi-test.pa"
    script.write_text(
        f"load-module module-native-protocol-unix socket={root / 'native'} auth-anonymous=1\n"
        f"load-module module-null-sink sink_name={SPEAKER_SINK} rate={RATE} channels=1\n"
        f"load-module module-null-sink sink_name={MIC_SINK} rate={RATE} channels=1\n"
        f"set-default-sink {SPEAKER_SINK}\n"
        f"set-default-source {MIC_SINK}.monitor\n"
    )
    env = {
        **os.environ,
        "HOME": str(root / "home"),
        "XDG_RUNTIME_DIR": str(root / "run"),
        "PULSE_RUNTIME_PATH": str(root / "run"),
    }
    with (root / "pulseaudio.log").open("wb") as log:
        process = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "-F",
                str(script),
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disable-shm=yes",
                "--log-target=stderr",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = PulseServer(root, process)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"pulseaudio exited with {process.returncode}:\n{server.log()}")
        if not server.socket.exists():
            return False
        probe = subprocess.run(
            ["pactl", "info"],
            env={**os.environ, **server.env},
            capture_output=True,
            text=True,
            check=False,
        )
        return probe.returncode == 0 and f"Default Sink: {SPEAKER_SINK}" in probe.stdout

    try:
        until_sync(ready, lambda: f"pulseaudio ready:\n{server.log()}", timeout_s=20)
    except BaseException:
        server.stop()
        raise
    return server


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes() / wav.getframerate()
