"""Speak a test phrase, stop, forget the conversation."""

from __future__ import annotations

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ServiceError, from_service_error
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
        await call.ctx.controls.speak(text)
    except ServiceError as err:
        # Controls already published the ERROR event; answer with the matching status.
        raise from_service_error(err) from err
    return {"status": "speaking", "text": text}


async def post_stop(call: Call) -> StopResponse:
    await call.ctx.controls.stop()
    return {"status": "stopped"}


async def post_reset_context(call: Call) -> ResetContextResponse:
    await call.ctx.controls.reset_context()
    return {"status": "context_reset"}


ENDPOINTS = (
    Endpoint(
        method="POST",
        path="/api/tts/test",
        handler=post_tts_test,
        summary="Speak a test phrase through the current TTS (answers once audio started)",
        tag=TAG,
        request=TtsTestRequest,
        request_required=False,
        response=TtsTestResponse,
        errors=(502, 503),
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
