"""The pipeline's parts as the HTTP handlers of /api/audio and /api/conversation find them
(`request.app[PIPELINE_KEY]`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from kiwi_voice.hub.audio.host import HostAudio
from kiwi_voice.hub.audio.session import AudioSession
from kiwi_voice.hub.context import HubContext
from kiwi_voice.hub.pipeline.controls import PipelineControls
from kiwi_voice.hub.pipeline.engine import Pipeline
from kiwi_voice.hub.pipeline.listener import Listener, ListenMode
from kiwi_voice.hub.pipeline.sink import TurnSink
from kiwi_voice.hub.pipeline.stt import SttClient
from kiwi_voice.hub.pipeline.wake_select import WakeEngineSelector
from kiwi_voice.hub.routing.claude import ClaudeClient
from kiwi_voice.hub.routing.contexts import SpeakerContexts
from kiwi_voice.hub.routing.router import Router

from .satellites import SatelliteRegistry


@dataclass(kw_only=True)
class PipelineRuntime:
    context: HubContext
    pipeline: Pipeline
    controls: PipelineControls  # what /api/tts/test, /api/stop and /api/reset-context do
    selector: WakeEngineSelector
    router: Router
    contexts: SpeakerContexts
    stt: SttClient
    claude: ClaudeClient | None
    satellites: SatelliteRegistry
    host_audio_mode: str = "auto"  # auto, on or off (KIWI_HOST_AUDIO)
    host_audio: HostAudio | None = None
    sessions: set[AudioSession] = field(default_factory=set)

    def listener(self, sink: TurnSink, mode: ListenMode = ListenMode.CONTINUOUS) -> Listener:
        """A new listener feeding this pipeline (a `ListenerFactory` for the audio sources)."""
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
