"""The /api/audio WebSocket protocol and the /api/audio/file shapes, declared once.

Binary frames, both ways: raw PCM signed 16-bit little-endian mono. In: at `sample_rate`
(16 kHz unless a hello said otherwise). Out: TTS audio at `output_sample_rate` (16 kHz by
default), resampled from whatever kiwi-tts produced. A client that only ever sends binary
frames gets only binary frames back: Kiwi's original web-microphone protocol, no handshake,
continuous listening for the wake word.

JSON text frames carry a `type` (AstrBot's `t` is accepted as an alias). A client that sends
any JSON frame also receives JSON frames: the turn frames of `pipeline/frames.py` plus those
below. See docs/web-microphone.md.
"""

from __future__ import annotations

from typing import Annotated, Literal, NotRequired, TypedDict

from kiwi_voice.hub.pipeline.frames import TURN_FRAMES, TurnErrorFrame
from kiwi_voice.hub.protocol import LanguageCode, TurnMetrics
from kiwi_voice.hub.shapes import Doc, Length, Pattern, Range

PROTOCOL_VERSION = 1
DEFAULT_RATE = 16_000
AudioMode = Literal["continuous", "push_to_talk"]
OutputFormat = Literal["binary", "base64", "none"]
SampleRate = Annotated[int, Range(8000, 96000)]
Stamp = Annotated[str, Length(0, 64), Doc("Echoed nowhere; for the client's own bookkeeping")]

# ---- client → server -------------------------------------------------------------------------


class HelloRequest(TypedDict):
    """Optional handshake; may be sent again at any time to change the session."""

    type: Literal["hello"]
    sample_rate: NotRequired[Annotated[SampleRate, Doc("Rate of the PCM the client sends")]]
    output_sample_rate: NotRequired[Annotated[SampleRate, Doc("Rate of the TTS audio sent back")]]
    output_format: NotRequired[
        Annotated[OutputFormat, Doc("binary frames (default), base64 `audio` frames, or none")]
    ]
    mode: NotRequired[Annotated[AudioMode, Doc("continuous: wake word (default)")]]
    language: NotRequired[LanguageCode]
    client: NotRequired[Annotated[str, Length(0, 100)]]
    room: NotRequired[
        Annotated[
            str,
            Length(1, 64),
            Pattern(r"[^\x00-\x1f/]+"),
            Doc(
                "Kiwi addition: this microphone's room. A named microphone is a satellite "
                "(`room:<name>`, Home Assistant's assist_satellite); see docs/satellites.md"
            ),
        ]
    ]


class AudioInput(TypedDict):
    """PCM s16le mono as base64, for clients that cannot send binary frames."""

    type: Literal["audio"]
    data: Annotated[str, Length(1, 4_000_000)]


class StartSpeaking(TypedDict):
    """Push-to-talk pressed: stop Kiwi if it speaks, capture until end_speaking."""

    type: Literal["start_speaking"]
    stamp: NotRequired[Stamp]


class EndSpeaking(TypedDict):
    type: Literal["end_speaking"]
    stamp: NotRequired[Stamp]


class TextInput(TypedDict):
    """Typed text, answered like speech (routing, TTS, interrupt)."""

    type: Literal["text_input"]
    text: Annotated[str, Length(1, 2000)]
    language: NotRequired[LanguageCode]


class Interrupt(TypedDict):
    """Stop this client's turn now (its LLM and TTS work end; no more of its audio comes)."""

    type: Literal["interrupt"]


class Mute(TypedDict):
    """Ignore this client's microphone audio until unmute."""

    type: Literal["mute"]


class Unmute(TypedDict):
    type: Literal["unmute"]


class AudioPing(TypedDict):
    type: Literal["ping"]


CLIENT_FRAMES: dict[str, type] = {
    "hello": HelloRequest,
    "audio": AudioInput,
    "start_speaking": StartSpeaking,
    "end_speaking": EndSpeaking,
    "text_input": TextInput,
    "interrupt": Interrupt,
    "stop": Interrupt,  # DESIGN.md's name for barge-in
    "mute": Mute,
    "unmute": Unmute,
    "ping": AudioPing,
}

# ---- server → client -------------------------------------------------------------------------


class HelloAck(TypedDict):
    type: Literal["hello_ack"]
    session_id: str
    protocol: Literal[1]
    sample_rate: int
    output_sample_rate: int
    output_format: OutputFormat
    mode: AudioMode
    wake_word: str
    wake_word_engine: Literal["openwakeword", "text"]


class AudioStartFrame(TypedDict):
    """The audio of `turn_id` follows (binary frames, or `audio` frames in base64 mode)."""

    type: Literal["audio_start"]
    turn_id: str
    sample_rate: int
    channels: Literal[1]
    width: Literal[2]
    format: Literal["binary", "base64"]


class AudioOutputFrame(TypedDict):
    type: Literal["audio"]
    turn_id: str
    data: Annotated[str, Doc("base64 PCM s16le mono at output_sample_rate")]


class AudioPong(TypedDict):
    type: Literal["pong"]


SERVER_FRAMES: tuple[type, ...] = (
    HelloAck,
    AudioStartFrame,
    AudioOutputFrame,
    AudioPong,
    *TURN_FRAMES,
)
ServerErrorFrame = TurnErrorFrame  # errors about a client frame have no turn_id

# ---- POST /api/audio/file -------------------------------------------------------------------


class AudioFileTurn(TypedDict):
    turn_id: str
    user_text: str | None
    language: str | None
    route: str
    reply: str
    interrupted: bool
    errors: list[str]
    audio_seconds: Annotated[float, Doc("TTS audio produced for this turn")]
    metrics: TurnMetrics | None


class AudioFileResponse(TypedDict):
    """Kiwi addition: what the pipeline made of a WAV file fed through it."""

    input_seconds: float
    wake_word_detected: bool
    turns: list[AudioFileTurn]
    errors: Annotated[list[str], Doc("Codes of failures outside a turn, e.g. wake_unavailable")]
