"""The pipeline's parts as the HTTP handlers of /api/audio and /api/conversation find them
(`request.app[PIPELINE_KEY]`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

from kiwi_voice.hub.audio.listener import Listener, ListenMode
from kiwi_voice.hub.routing.claude import ClaudeClient
from kiwi_voice.hub.routing.contexts import SpeakerContexts
from kiwi_voice.hub.routing.router import Router

from .engine import Pipeline
from .sink import TurnSink
from .stt import SttClient
from .wake_select import WakeEngineSelector

if TYPE_CHECKING:
    from kiwi_voice.hub.audio.host import HostAudio
    from kiwi_voice.hub.audio.session import AudioSession
    from kiwi_voice.hub.context import HubContext


@dataclass(kw_only=True)
class PipelineRuntime:
    context: HubContext
    pipeline: Pipeline
    selector: WakeEngineSelector
    router: Router
    contexts: SpeakerContexts
    stt: SttClient
    claude: ClaudeClient | None
    host_audio_mode: str = "auto"  # auto, on or off (KIWI_HOST_AUDIO)
    host_audio: HostAudio | None = None
    sessions: set[AudioSession] = field(default_factory=set)

    def listener(self, sink: TurnSink, mode: ListenMode = ListenMode.CONTINUOUS) -> Listener:
        ctx = self.context
        return Listener(
            sink=sink,
            pipeline=self.pipeline,
            selector=self.selector,
            stt=self.stt,
            settings=ctx.settings,
            bus=ctx.bus,
            wake_uri=ctx.options.wake_uri,
            mode=mode,
        )


PIPELINE_KEY = web.AppKey("kiwi_pipeline", PipelineRuntime)
