"""Which backend service handles which Wyoming event: the routing table of the combined endpoint."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """The backend a connection talks to; named after the `info` section it comes from."""

    ASR = "asr"
    TTS = "tts"
    WAKE = "wake"


# Events that open (or switch) a connection's mode. `synthesize-chunk` and `synthesize-stop` only
# ever follow `synthesize-start`, but naming them here keeps a connection that reconnected mid-way
# routed to TTS instead of dropped.
_OPENERS: dict[str, Mode] = {
    "transcribe": Mode.ASR,
    "synthesize": Mode.TTS,
    "synthesize-start": Mode.TTS,
    "synthesize-chunk": Mode.TTS,
    "synthesize-stop": Mode.TTS,
    "detect": Mode.WAKE,
}

# Events answered by the endpoint itself, never forwarded.
LOCAL_EVENTS = frozenset({"describe", "ping"})

# Held until the connection opens a mode, then forwarded to that backend first: it names a
# program for the whole connection, and only the request that follows says which backend.
DEFERRED_EVENTS = frozenset({"select-program"})


def mode_opened_by(event_type: str) -> Mode | None:
    """The mode an event opens, or None when it follows whatever mode is open (audio-*, ...)."""
    return _OPENERS.get(event_type)
