"""One connection to the wake service: `detect`, then audio, then `detection` / `not-detected`.

Protocol (Wyoming `wake` domain):

- `describe` -> `info`.
- `detect` {names?} chooses the wake words of the next stream (or of the current one, when it
  arrives mid-stream). A name may be a model name (`hey_jarvis`), file stem
  (`hey_jarvis_v0.1`) or phrase (`hey jarvis`); `detection` events carry the name exactly as
  the client wrote it, so clients that compare names (Home Assistant does) find theirs.
  Without `detect`, a stream listens for the service's default wake words.
- `audio-start`, `audio-chunk`* (any rate/width/channels; converted to 16 kHz mono s16),
  `audio-stop`. Each firing sends `detection` {name, timestamp}, where timestamp is the stream
  time in ms at the end of the 80 ms frame that fired, counted from the first chunk's own
  timestamp (0 if it has none). `audio-stop` answers `not-detected` when nothing fired.
  The connection stays open for further streams.
- Errors are `error` {text, code}: `unknown_model`, `model_missing`, `unexpected_event`
  (audio before `audio-start`), `bad_audio`, `payload_too_large`, `bad_request`. An error ends
  the stream it belongs to; its remaining chunks are dropped quietly until `audio-stop`.

Scoring runs in the shared engine executor through the `WakeBatcher`, which scores the frames
of all connections together (one model pass per tick for every active stream), in a task that
runs beside the reading of further audio (read-ahead is bounded). A client that disconnects
has its not-yet-scored audio dropped and its task cancelled: it costs nothing afterwards
beyond the batch in progress.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.wake import Detect, Detection, NotDetected

from kiwi_voice.common.audio import PcmFormat, StreamingConverter
from kiwi_voice.common.errors import ErrorCode, ServiceError
from kiwi_voice.common.framing import FrameLimits
from kiwi_voice.common.handler import ServiceEventHandler

from .batcher import WakeBatcher
from .catalog import resolve_name
from .engine import WakeStream
from .loader import ModelSet, WakeModels

_LOGGER = logging.getLogger(__name__)


# Audio read ahead of the detector, per stream. Reading ahead lets the handler see a client
# leave (EOF) while its audio still waits, and drop that audio instead of scoring it; beyond
# this much, reading pauses until the detector catches up (TCP backpressure).
MAX_READ_AHEAD_S = 10.0
FRAMES_PER_STEP = 25  # 2 s of audio per worker call: cancelling waits for at most this much


@dataclass
class _ActiveStream:
    stream: WakeStream
    reply_names: dict[str, str]  # model -> the name the client asked for
    converter: StreamingConverter = field(default_factory=StreamingConverter)
    first_timestamp: int | None = None
    scoring: asyncio.Task[None] | None = None  # scores queued frames while audio arrives

    def stop_scoring(self) -> None:
        if self.scoring is None:
            return
        finished = self.scoring.done() and not self.scoring.cancelled()
        # Nobody will await it now: take its outcome so that a failure is logged, not lost.
        if finished and (error := self.scoring.exception()) is not None:
            _LOGGER.warning("wake stream ended with %r", error)
        self.scoring.cancel()


class WakeEventHandler(ServiceEventHandler):
    """Handles one client connection of `kiwi-wake`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        models: WakeModels,
        batcher: WakeBatcher,
        describe: Callable[[], Info],
        frame_limits: FrameLimits | None = None,
    ) -> None:
        super().__init__(reader, writer, frame_limits)
        self._models = models
        self._batcher = batcher
        self._describe = describe
        self._requested: list[str] | None = None  # names from `detect`, for the next stream
        self._active: _ActiveStream | None = None
        self._discarding = False  # the current stream failed: drop its audio until audio-stop

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(self._describe().event())
        elif Detect.is_type(event.type):
            self._on_detect(event)
        elif AudioStart.is_type(event.type):
            self._on_audio_start(event)
        elif AudioChunk.is_type(event.type):
            await self._on_audio_chunk(event)
        elif AudioStop.is_type(event.type):
            await self._on_audio_stop()
        else:
            _LOGGER.debug("%s: ignoring %s", self.client_id, event.type)
        return True

    def reset_request(self) -> None:
        """End the current stream after an error or a disconnect; its unscored audio is dropped."""
        if self._active is not None:
            self._active.stop_scoring()
            self._discarding = True
            if unscored := self._active.stream.pending_seconds:
                _LOGGER.info(
                    "%s: stream abandoned (%s); %.1f s of its audio dropped unscored",
                    self.client_id,
                    "client left" if self.client_gone() else "request failed",
                    unscored,
                )
        self._active = None
        self._requested = None

    # -- events ---------------------------------------------------------------------------

    def _on_detect(self, event: Event) -> None:
        names = event.data.get("names")
        if names is not None and (
            not isinstance(names, list) or not all(isinstance(n, str) for n in names)
        ):
            raise ServiceError(ErrorCode.BAD_REQUEST, "detect names must be a list of strings")
        requested = names or None
        if self._active is not None:
            models, reply_names = self._resolve(self._models.current, requested)
            self._active.stream.select(models)
            self._active.reply_names = reply_names
        else:
            # Checked now so that a wrong name is reported at once, not at audio-start.
            self._resolve(self._models.current, requested)
            self._requested = requested

    def _on_audio_start(self, event: Event) -> None:
        self._active = None
        self._discarding = True  # until this stream is accepted
        model_set = self._models.current
        if model_set.engine is None:
            raise ServiceError(
                ErrorCode.MODEL_MISSING, f"wake word models are not ready: {model_set.problem}"
            )
        PcmFormat.from_event_data(event.data)
        models, reply_names = self._resolve(model_set, self._requested)
        self._requested = None
        self._active = _ActiveStream(model_set.engine.open_stream(models), reply_names)
        self._discarding = False
        _LOGGER.debug("%s: stream started for %s", self.client_id, ", ".join(models))

    async def _on_audio_chunk(self, event: Event) -> None:
        active = self._active
        if active is None:
            if self._discarding:
                return
            raise ServiceError(ErrorCode.UNEXPECTED_EVENT, "audio-chunk before audio-start")
        fmt = PcmFormat.from_event_data(event.data)
        if active.first_timestamp is None:
            timestamp = event.data.get("timestamp")
            active.first_timestamp = timestamp if isinstance(timestamp, int) else 0
        active.stream.add_audio(active.converter.convert(event.payload or b"", fmt))
        if active.scoring is None or active.scoring.done():
            if active.scoring is not None:
                active.scoring.result()  # a failure of the previous run is this request's error
            active.scoring = asyncio.create_task(self._score_queued(active))
        if active.stream.pending_seconds > MAX_READ_AHEAD_S:
            await asyncio.shield(active.scoring)

    async def _score_queued(self, active: _ActiveStream) -> None:
        """Score queued frames in the engine executor until none are left; send detections."""
        while (audio := active.stream.take_frames(FRAMES_PER_STEP)) is not None:
            for hit in await self._batcher.score(active.stream, audio):
                name = active.reply_names.get(hit.model, hit.model)
                _LOGGER.info("%s: detected %s (score %.2f)", self.client_id, name, hit.score)
                timestamp = (active.first_timestamp or 0) + hit.stream_ms
                try:
                    await self.write_event(Detection(name=name, timestamp=timestamp).event())
                except ConnectionError:
                    return  # the client left; its remaining audio is not worth scoring

    async def _on_audio_stop(self) -> None:
        active, self._active = self._active, None
        if active is None:
            if self._discarding:
                self._discarding = False
                return
            raise ServiceError(ErrorCode.UNEXPECTED_EVENT, "audio-stop before audio-start")
        if active.scoring is not None:
            await active.scoring  # every frame received is scored before the answer
        if not active.stream.fired:
            await self.write_event(NotDetected().event())

    # -- names ----------------------------------------------------------------------------

    @staticmethod
    def _resolve(
        model_set: ModelSet, requested: list[str] | None
    ) -> tuple[list[str], dict[str, str]]:
        """The models a stream listens for, and the name to report for each."""
        if model_set.engine is None:
            return [], {}
        if not requested:
            if not model_set.default_models:
                raise ServiceError(
                    ErrorCode.MODEL_MISSING,
                    f"none of the default wake words is available: {model_set.problem}",
                )
            return list(model_set.default_models), {}
        loaded = list(model_set.engine.classifiers)
        models: list[str] = []
        reply_names: dict[str, str] = {}
        for name in requested:
            model = resolve_name(name, loaded)
            if model is None:
                raise ServiceError(*_why_not_available(model_set, name))
            if model not in reply_names:
                models.append(model)
                reply_names[model] = name
        return models, reply_names


def _why_not_available(model_set: ModelSet, requested: str) -> tuple[ErrorCode, str]:
    present = [s.file.name for s in model_set.wake_words]
    model = resolve_name(requested, present)
    if model is not None:
        status = model_set.status(model)
        problem = status.problem if status else "not loaded"
        return ErrorCode.MODEL_MISSING, f"wake word {requested!r} cannot run: {problem}"
    loaded = ", ".join(model_set.engine.classifiers) if model_set.engine else "none"
    return ErrorCode.UNKNOWN_MODEL, f"no wake word model named {requested!r} (loaded: {loaded})"
