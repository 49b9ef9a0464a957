"""Speak a test phrase, stop, forget the conversation."""

from __future__ import annotations

from kiwi_voice.hub.controls import CONTROLS_KEY
from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ServiceError, from_service_error, not_found, unavailable
from kiwi_voice.hub.playback import NoAudioOutput
from kiwi_voice.hub.protocol import (
    ResetContextResponse,
    StopResponse,
    TtsTestRequest,
    TtsTestResponse,
)

TAG = "controls"
DEFAULT_TEST_PHRASE = "Hello, I am Kiwi!"


async def post_tts_test(call: Call) -> TtsTestResponse:
    text = call.body.get("text") or DEFAULT_TEST_PHRASE
    try:
        played_on = await call.request.app[CONTROLS_KEY].speak(
            text, call.body.get("target"), wait=bool(call.body.get("wait", False))
        )
    except NoAudioOutput as err:
        # Nothing would hear it: saying "speaking" would be a success that did not happen.
        if err.code == "unknown_output":
            raise not_found(err.code, str(err)) from err
        raise unavailable(err.code, str(err)) from err
    except ServiceError as err:
        # Controls already published the ERROR event; answer with the matching status.
        raise from_service_error(err) from err
    return {"status": "speaking", "text": text, "played_on": played_on}


async def post_stop(call: Call) -> StopResponse:
    await call.request.app[CONTROLS_KEY].stop()
    return {"status": "stopped"}


async def post_reset_context(call: Call) -> ResetContextResponse:
    await call.request.app[CONTROLS_KEY].reset_context()
    return {"status": "context_reset"}


ENDPOINTS = (
    Endpoint(
        method="POST",
        path="/api/tts/test",
        handler=post_tts_test,
        summary="Speak a test phrase through the current TTS (answers once audio started)",
        description="503 `no_audio_output` when nothing can play it (no browser microphone "
        "connected, no host speaker), 404 `unknown_output` when `target` names no connected "
        "output; otherwise `played_on` says where it plays.",
        tag=TAG,
        request=TtsTestRequest,
        request_required=False,
        response=TtsTestResponse,
        errors=(404, 502, 503),
    ),
    Endpoint(
        method="POST",
        path="/api/stop",
        handler=post_stop,
        summary="Stop speaking now",
        tag=TAG,
        response=StopResponse,
    ),
    Endpoint(
        method="POST",
        path="/api/reset-context",
        handler=post_reset_context,
        summary="Forget the conversation (clears the language model's history)",
        tag=TAG,
        response=ResetContextResponse,
    ),
)
