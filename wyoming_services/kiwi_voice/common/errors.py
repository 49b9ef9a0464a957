"""Errors that a Wyoming service reports to its client as an `error` event with a code."""

from __future__ import annotations

from enum import StrEnum

from wyoming.error import Error
from wyoming.event import Event


class ErrorCode(StrEnum):
    """Machine-readable codes carried in Wyoming `error` events by every Kiwi service."""

    BAD_REQUEST = "bad_request"  # an event's data is missing fields or has wrong types
    UNEXPECTED_EVENT = "unexpected_event"  # e.g. audio-chunk before audio-start
    BAD_AUDIO = "bad_audio"  # unsupported rate/width/channels or a torn sample frame
    NO_AUDIO = "no_audio"  # audio-stop with no audio in between, or only silence
    AUDIO_TOO_SHORT = "audio_too_short"  # too little speech to judge (e.g. a voice sample)
    AUDIO_TOO_QUIET = "audio_too_quiet"  # speech below the level a voice sample needs
    AUDIO_CLIPPED = "audio_clipped"  # the recording hit full scale: its sound is distorted
    PAYLOAD_TOO_LARGE = "payload_too_large"  # an event, an utterance or a text over the limits
    EMPTY_TEXT = "empty_text"
    UNKNOWN_VOICE = "unknown_voice"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_PROFILE = "unknown_profile"
    ENROLLMENT_BUSY = "enrollment_busy"  # the same new profile is being enrolled elsewhere
    SAMPLE_REJECTED = "sample_rejected"  # an automatic sample that is not clearly the profile's
    MODEL_MISSING = "model_missing"  # not on disk and its download failed
    ENGINE_FAILED = "engine_failed"  # the engine raised while working on valid input
    INTERNAL_ERROR = "internal_error"


class ServiceError(Exception):
    """A request failed in a way the client should hear about; the connection stays usable."""

    def __init__(self, code: ErrorCode | str, text: str) -> None:
        super().__init__(text)
        self.code = str(code)
        self.text = text

    def event(self) -> Event:
        """The Wyoming `error` event that tells the client what went wrong."""
        return Error(text=self.text, code=self.code).event()

    def __repr__(self) -> str:
        return f"ServiceError({self.code!r}, {self.text!r})"
