"""The Whisper model kiwi-stt runs follows the `stt_model` and `stt_device` settings.

A change is carried out before it is kept (`switch`): kiwi-stt loads the new model beside the old
one (downloading it if it can), the hub publishes MODEL_LOADING while it does and MODEL_LOADED
when it runs; a model that cannot be had fails the change with an error that names the setting,
and the old model goes on. `SttModelKeeper` asks kiwi-stt for the configured model at start and
every `interval` after (answered at once when it runs it already), so a kiwi-stt that restarted
with its command-line model is put right. Only run-time changes need this: the settings' defaults
are the options kiwi-stt was started with (the launcher passes the same `stt_model` to both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from wyoming.error import Error
from wyoming.event import Event

from .errors import ServiceError, ServiceUnavailable
from .event_payloads import EventType, error, model_loaded, model_loading
from .events import EventBus
from .settings import SettingsStore
from .wyoming_client import tcp_client

_LOGGER = logging.getLogger(__name__)
SERVICE = "stt"
# kiwi-stt's model switch (kiwi_voice/stt/models.py).
LOAD_EVENT = "kiwi-stt-load"
PROGRESS_EVENT = "kiwi-stt-progress"
LOADED_EVENT = "kiwi-stt-loaded"
# A download can take long; each progress event restarts this wait.
_READ_TIMEOUT_SECONDS = 600.0
STT_SETTINGS = ("stt_model", "stt_device")
# A model that could not be had is not asked for again sooner (unless the setting changes).
_RETRY_FAILED_SECONDS = 600.0


class SttModelControl:
    def __init__(self, uri: str, bus: EventBus) -> None:
        self.uri = uri
        self._bus = bus

    async def switch(self, model: str, device: str) -> float:
        """Make kiwi-stt run `model` on `device`; the seconds it took (0: it ran it already).

        Raises ServiceError: `model_missing` (not on disk, no download), `engine_failed` (it
        would not load, e.g. no CUDA), `stt_unavailable`."""
        client = tcp_client(self.uri, SERVICE, 3.0, _READ_TIMEOUT_SECONDS)
        try:
            await client.connect()
        except (TimeoutError, OSError) as err:
            raise ServiceUnavailable(
                SERVICE, f"cannot reach kiwi-stt at {self.uri}: {err}"
            ) from err
        try:
            await client.write_event(Event(LOAD_EVENT, {"model": model, "device": device}))
            while True:
                event = await client.read_event()
                if event is None:
                    raise ServiceUnavailable(SERVICE, "kiwi-stt hung up while switching models")
                if Error.is_type(event.type):
                    failure = Error.from_event(event)
                    raise ServiceError(SERVICE, failure.code or "stt_error", failure.text)
                if event.type == PROGRESS_EVENT:
                    stage = event.data.get("stage")
                    if stage in ("downloading", "loading"):
                        self._bus.publish(
                            EventType.MODEL_LOADING, model_loading(model, device, stage), SERVICE
                        )
                elif event.type == LOADED_EVENT:
                    seconds = float(event.data.get("seconds") or 0.0)
                    if seconds > 0:
                        payload = model_loaded(model, device, seconds)
                        self._bus.publish(EventType.MODEL_LOADED, payload, SERVICE)
                    return seconds
        except TimeoutError as err:
            raise ServiceUnavailable(SERVICE, "kiwi-stt did not answer the model switch") from err
        except (OSError, ConnectionError) as err:
            raise ServiceUnavailable(
                SERVICE, f"lost kiwi-stt while switching models: {err}"
            ) from err
        finally:
            with contextlib.suppress(OSError, ConnectionError):
                await client.disconnect()


def switch_failure_message(err: ServiceError, model: str, device: str, running: str) -> str:
    """What the owner reads when a switch failed: what is wrong, and the setting to change."""
    if err.code == "model_missing":
        return (
            f"Whisper model {model!r} is not installed and could not be downloaded "
            f"({err.message}). Kiwi keeps using {running!r}. Put the model into a models "
            f"folder (whisper/{model.replace('/', '--')}) or choose an installed one in stt_model."
        )
    if err.code == "engine_failed":
        return (
            f"Whisper model {model!r} would not load on {device!r} ({err.message}). "
            f"Kiwi keeps using {running!r}. Choose another stt_device or stt_model."
        )
    return f"kiwi-stt could not switch to {model!r}: {err.message}"


class SttModelKeeper:
    """Keeps kiwi-stt on the configured model (see the module's docstring)."""

    def __init__(
        self,
        control: SttModelControl,
        settings: SettingsStore,
        bus: EventBus,
        interval: float = 30.0,
    ) -> None:
        self.control = control
        self._settings = settings
        self._bus = bus
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._failed: tuple[str, str, float] | None = None  # model, device, when
        self.switching = asyncio.Lock()  # one switch at a time (this one or the API's)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._keep(), name="stt-model-keeper")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep(self) -> None:
        while True:
            await self.ensure()
            await asyncio.sleep(self._interval)

    async def ensure(self) -> None:
        """Ask kiwi-stt for the configured model once; a model it cannot have is reported and
        the run-time change that named it is dropped (the option's value serves again)."""
        if not any(self._settings.changed_at_run_time(name) for name in STT_SETTINGS):
            return
        model = str(self._settings.get("stt_model"))
        device = str(self._settings.get("stt_device"))
        failed = self._failed
        if (
            failed
            and failed[:2] == (model, device)
            and time.monotonic() - failed[2] < _RETRY_FAILED_SECONDS
        ):
            return
        async with self.switching:
            try:
                await self.control.switch(model, device)
            except ServiceUnavailable as err:
                _LOGGER.debug("kiwi-stt not reachable for the model check: %s", err.message)
                return
            except ServiceError as err:
                self._failed = (model, device, time.monotonic())
                message = switch_failure_message(err, model, device, "the model it runs")
                _LOGGER.error("%s", message)
                setting = "stt_device" if err.code == "engine_failed" else "stt_model"
                self._bus.publish(
                    EventType.ERROR, error(message, SERVICE, err.code, setting=setting), SERVICE
                )
                self._settings.update(dict.fromkeys(STT_SETTINGS))
