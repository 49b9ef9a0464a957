"""Start real Kiwi processes in milliseconds, for tests that kill and restart them many times.

A zygote is a Python process of the add-on env that imports a service's modules once (the hub
needs ~4 s of CPU to import anthropic, scipy and aiohttp) and then forks on request: each child
is a fresh process that runs the service's own `main()` with its own argv, environment, process
group and log file, exactly as the console script would, only without paying for the imports.
A child killed with SIGKILL dies like any process; the zygote never touches its state.

    with Zygote(["kiwi_voice.hub.__main__"]) as zygote:  # "module:function" also calls it
        child = zygote.spawn("kiwi_voice.hub.__main__", ["--port", "7789"], log_path)
        child.kill()

Standard library only (the HA env may import it); the zygote runs `.venv-addon/bin/python`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.support.cache import REPO_ROOT
from tests.support.waiting import until_sync
from tests.support.wyoming_process import ADDON_BIN

# Runs inside the zygote. SIGCHLD is ignored so the kernel reaps children at once (a killed
# child leaves no zombie); each child restores it, starts its own session and runs main().
_ZYGOTE_SOURCE = r"""
import importlib, json, os, signal, sys
for name in sys.argv[1:]:
    module_name, _, function = name.partition(":")
    module = importlib.import_module(module_name)
    if function:
        getattr(module, function)()
signal.signal(signal.SIGCHLD, signal.SIG_IGN)
print("ready", flush=True)
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.setsid()
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.environ.update(request["env"])
            sys.argv = [request["module"], *request["argv"]]
            module = importlib.import_module(request["module"])
            module.main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException:
            import traceback
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
"""


def warm_voice_encoder() -> None:
    """Zygote preload `tests.support.process_zygote:warm_voice_encoder`: import onnxruntime
    and run the voice encoder once, so each forked kiwi-speaker starts in milliseconds. Its
    onnxruntime session runs on the calling thread, so no thread pool exists to fork."""
    from kiwi_voice.speaker.encoder import VoiceEncoder, bundled_weights

    weights = bundled_weights()
    assert weights is not None, "resemblyzer's pretrained.pt is missing"
    VoiceEncoder(weights).warm_up()


@dataclass
class Child:
    """One forked service process."""

    pid: int
    log_path: Path

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self, signum: int = signal.SIGKILL, timeout_s: float = 10.0) -> None:
        """Signal the child's process group and wait until the kernel has reaped it."""
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:  # forked a moment ago: not yet the leader of its group
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)
        until_sync(
            lambda: not self.alive(),
            f"process {self.pid} ends after signal {signum}",
            timeout_s=timeout_s,
            every_s=0.005,
        )


class Zygote:
    """A pre-imported Python that forks service processes on request."""

    def __init__(self, preload: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self._process = subprocess.Popen(
            [str(ADDON_BIN / "python"), "-c", _ZYGOTE_SOURCE, *preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, **(env or {})},
            cwd=REPO_ROOT,
            text=True,
            start_new_session=True,
        )
        self.children: list[Child] = []
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError(f"the zygote could not import {list(preload)}")

    def spawn(
        self,
        module: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> Child:
        """Fork a child that runs `module.main()` with `argv`; its output goes to `log_path`."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        request = {
            "module": module,
            "argv": list(argv),
            "log": str(log_path),
            "env": dict(env or {}),
        }
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        child = Child(int(self._process.stdout.readline()), log_path)
        self.children.append(child)
        return child

    def close(self) -> None:
        """Kill every child still running, then the zygote."""
        for child in self.children:
            child.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(10)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> Zygote:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
