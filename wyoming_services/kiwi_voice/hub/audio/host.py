"""The host's microphone and speaker (PulseAudio in the add-on, `audio: true`), optional.

Uses `sounddevice` (PortAudio) when it is installed and a device exists; otherwise host audio
is off with one log line, and the hub runs on browser audio alone. `KIWI_HOST_AUDIO`: auto
(default: use what exists), on (same, but say loudly what is missing), off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from wyoming.audio import AudioChunk

from kiwi_voice.hub.pipeline.frames import TurnFrame
from kiwi_voice.hub.pipeline.listener import Listener, ListenerFactory
from kiwi_voice.hub.pipeline.sink import SilentSink
from kiwi_voice.hub.playback import PlaybackOutputs

from .convert import PcmConverter

_LOGGER = logging.getLogger(__name__)
RATE = 16_000
_ANNOUNCEMENT = "announcement"  # the turn id _HostOutput plays announcements under
BLOCK_SAMPLES = 1600  # 100 ms


class HostSpeaker:
    """A TurnSink (and hub AudioOutput) that plays on the host's default output device."""

    label = "host"

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._stopped: set[str] = set()
        self._turn: str | None = None
        self._converter = PcmConverter(RATE)
        # True while the host microphone's replies play elsewhere (a Home Assistant media player).
        self.replies_elsewhere: Callable[[], bool] = lambda: False

    async def send_frame(self, frame: TurnFrame) -> None:
        return None

    async def play(self, turn_id: str, chunk: AudioChunk) -> None:
        if turn_id in self._stopped:
            return
        if turn_id != _ANNOUNCEMENT and self.replies_elsewhere():
            return  # Home Assistant says this reply on the media player the user chose
        if turn_id != self._turn:
            self._turn, self._converter = turn_id, PcmConverter(RATE)
        pcm = self._converter.convert(chunk.audio, chunk.rate, chunk.width, chunk.channels)
        # A blocking write returns when the device took the audio: playback paces itself.
        await asyncio.get_running_loop().run_in_executor(None, self._stream.write, pcm)

    async def stop_playback(self, turn_id: str) -> None:
        self._stopped.add(turn_id)
        await self.flush()

    async def wait_played(self, turn_id: str) -> None:
        return None

    async def flush(self) -> None:
        def restart() -> None:
            self._stream.abort()  # drops what the device has not played yet
            self._stream.start()

        await asyncio.get_running_loop().run_in_executor(None, restart)


class _HostOutput:
    """HostSpeaker as one of the hub's PlaybackOutputs (announcements)."""

    label = HostSpeaker.label
    can_play = True

    def __init__(self, speaker: HostSpeaker) -> None:
        self._speaker = speaker

    async def play(self, chunk: AudioChunk) -> None:
        await self._speaker.play(_ANNOUNCEMENT, chunk)

    async def flush(self) -> None:
        await self._speaker.flush()


class HostAudio:
    def __init__(self) -> None:
        self._streams: list[Any] = []
        self._listener: Listener | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._remove_output: Any = None
        self._speaker: HostSpeaker | None = None

    @classmethod
    async def start(
        cls, listen: ListenerFactory, outputs: PlaybackOutputs, mode: str
    ) -> HostAudio | None:
        """Open what exists; None (and one log line) when there is nothing to open.

        The microphone gets its listener from `listen`; the speaker joins `outputs`
        (announcements) and is the sink of the microphone's turns."""
        if mode == "off":
            _LOGGER.info("Host audio off (KIWI_HOST_AUDIO=off)")
            return None
        log = _LOGGER.warning if mode == "on" else _LOGGER.info
        try:
            import sounddevice
        except (ImportError, OSError) as err:  # OSError: the PortAudio library is missing
            log("Host audio disabled: sounddevice is not available (%s)", err)
            return None
        host = cls()
        speaker = host._speaker = host._open_speaker(sounddevice, log)
        sink = speaker
        if speaker is not None:
            host._remove_output = outputs.add(_HostOutput(speaker))
        host._open_microphone(sounddevice, listen, sink, log)
        if not host._streams:
            return None
        return host

    def _open_speaker(self, sounddevice: Any, log: Any) -> HostSpeaker | None:
        try:
            sounddevice.query_devices(kind="output")
            stream = sounddevice.RawOutputStream(samplerate=RATE, channels=1, dtype="int16")
            stream.start()
        except Exception as err:  # PortAudioError, ValueError: no usable device
            log("Host speaker disabled: %s", err)
            return None
        self._streams.append(stream)
        _LOGGER.info("Host speaker on: %s", _device_name(sounddevice, "output"))
        return HostSpeaker(stream)

    def _open_microphone(
        self, sounddevice: Any, listen: ListenerFactory, speaker: HostSpeaker | None, log: Any
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)

        def on_audio(data: Any, _frames: int, _time: Any, _status: Any) -> None:
            # PortAudio's thread: hand the block to the event loop, drop it if the loop lags.
            loop.call_soon_threadsafe(_offer, queue, bytes(data))

        try:
            sounddevice.query_devices(kind="input")
            stream = sounddevice.RawInputStream(
                samplerate=RATE,
                channels=1,
                dtype="int16",
                blocksize=BLOCK_SAMPLES,
                callback=on_audio,
            )
            stream.start()
        except Exception as err:
            log("Host microphone disabled: %s", err)
            return
        self._streams.append(stream)
        self._listener = listen(speaker or SilentSink())
        self._feeder = asyncio.create_task(self._feed(queue), name="host-microphone")
        _LOGGER.info("Host microphone on: %s", _device_name(sounddevice, "input"))

    @property
    def listener(self) -> Listener | None:
        """The host microphone's listener; None when only the speaker opened."""
        return self._listener

    @property
    def speaker(self) -> HostSpeaker | None:
        return self._speaker

    async def _feed(self, queue: asyncio.Queue[bytes]) -> None:
        assert self._listener is not None
        while True:
            await self._listener.feed(await queue.get())

    async def close(self) -> None:
        if self._feeder is not None:
            self._feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._feeder
        if self._listener is not None:
            await self._listener.close()
        if self._remove_output is not None:
            self._remove_output()
        for stream in self._streams:
            with contextlib.suppress(Exception):
                stream.close()


def _offer(queue: asyncio.Queue[bytes], block: bytes) -> None:
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(block)


def _device_name(sounddevice: Any, kind: str) -> str:
    try:
        return str(sounddevice.query_devices(kind=kind)["name"])
    except Exception:
        return "default device"
