"""What the REST controls do: speak a test phrase, stop speaking, forget the conversation.

The endpoints (api/controls.py) depend only on the `Controls` protocol and find the hub's one
implementation under `request.app[CONTROLS_KEY]`: the voice pipeline's (pipeline/controls.py),
which `build_app` is given, so stopping also stops the pipeline's turns.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web


class Controls(Protocol):
    async def speak(self, text: str, target: str | None = None, *, wait: bool = False) -> list[str]:
        """Start speaking `text` (on the output labelled `target` only, when given); return
        where it plays once audio started (`wait`: once it was said). Raises ServiceError if
        TTS fails and playback.NoAudioOutput when nothing can play it."""

    async def stop(self) -> bool:
        """Stop speaking now; True if something was interrupted."""

    async def reset_context(self) -> None:
        """Forget the conversation so far."""

    async def close(self) -> None:
        """Stop everything before the hub exits."""


CONTROLS_KEY = web.AppKey("kiwi_controls", Controls)
