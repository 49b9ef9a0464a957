"""Wiring the pipeline into the hub: the parts it is made of, the endpoints it adds, and its
start and stop.

    context = build_context(options, environ)
    runtime = build_pipeline(context, environ)
    app = build_app(context, runtime.controls, PIPELINE_ENDPOINTS)
    setup_pipeline(app, runtime)

`runtime.controls` are the hub's `Controls` (/api/tts/test, /api/stop, /api/reset-context):
stopping stops the pipeline's turns, forgetting forgets every speaker's conversation.
`approvals` is the seam for guest approvals: pass a gate that asks the owner (issue 6);
`tools` are offered to Claude when the speaker may control the home (hub/approvals/tools.py);
`speakers` identifies voices in turns (default: kiwi-speaker as is; approvals/guest_learning.py
wraps it to learn unknown voices as guests).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from kiwi_voice.hub.audio.host import HostAudio
from kiwi_voice.hub.context import HubContext
from kiwi_voice.hub.endpoint import Endpoint
from kiwi_voice.hub.pipeline.controls import PipelineControls
from kiwi_voice.hub.pipeline.engine import Pipeline
from kiwi_voice.hub.pipeline.policy import ApprovalGate, RefusingApprovalGate, SpeakerPolicy
from kiwi_voice.hub.pipeline.stt import SttClient
from kiwi_voice.hub.pipeline.turn import TurnServices
from kiwi_voice.hub.pipeline.wake_select import WakeEngineSelector
from kiwi_voice.hub.routing.claude import ClaudeClient, ToolRunner
from kiwi_voice.hub.routing.contexts import SpeakerContexts
from kiwi_voice.hub.routing.router import Router
from kiwi_voice.hub.speakers import SpeakerIdentifier

from . import assist_api, audio_api, conversation_api, satellites_api
from .runtime import PIPELINE_KEY, PipelineRuntime
from .satellites import HOST, Satellite, SatelliteRegistry

_LOGGER = logging.getLogger(__name__)
PIPELINE_ENDPOINTS: tuple[Endpoint, ...] = (
    *audio_api.ENDPOINTS,
    *conversation_api.ENDPOINTS,
    *satellites_api.ENDPOINTS,
    *assist_api.ENDPOINTS,
)
HOST_AUDIO_MODES = ("auto", "on", "off")


def build_pipeline(
    context: HubContext,
    environ: Mapping[str, str],
    approvals: ApprovalGate | None = None,
    tools: ToolRunner | None = None,
    speakers: SpeakerIdentifier | None = None,
) -> PipelineRuntime:
    settings = context.settings
    claude = None
    if context.secrets.anthropic_api_key:
        claude = ClaudeClient(
            context.secrets.anthropic_api_key, base_url=environ.get("ANTHROPIC_BASE_URL")
        )
    else:
        _LOGGER.info("No Anthropic API key: Home Assistant's conversation agent answers everything")
    contexts = SpeakerContexts(idle_seconds=lambda: float(settings.get("context_idle_seconds")))
    router = Router(
        homeassistant=context.homeassistant,
        claude=claude,
        souls=context.souls,
        contexts=contexts,
        tools=tools,
    )
    stt = SttClient(context.options.stt_uri)
    services = TurnServices(
        bus=context.bus,
        state=context.state,
        settings=settings,
        souls=context.souls,
        stt=stt,
        speakers=speakers or context.speakers,
        tts=context.tts,
        router=router,
        policy=SpeakerPolicy(settings),
        approvals=approvals or RefusingApprovalGate(),
        links=context.speaker_links,
        # Off only to measure what sentence streaming gains (bench/bench_pipeline.py).
        stream_sentences=environ.get("KIWI_SENTENCE_STREAMING", "on").strip().lower() != "off",
    )
    pipeline = Pipeline(services, context.outputs)
    selector = WakeEngineSelector(settings, context.options.wake_uri, context.pipeline_status)
    host_audio_mode = (environ.get("KIWI_HOST_AUDIO") or "auto").strip().lower()
    if host_audio_mode not in HOST_AUDIO_MODES:
        _LOGGER.warning("Ignoring KIWI_HOST_AUDIO=%r (auto, on or off)", host_audio_mode)
        host_audio_mode = "auto"

    async def close_parts() -> None:
        # `runtime` is the one built below; its host audio exists once the app has started.
        if runtime.host_audio is not None:
            await runtime.host_audio.close()
        await selector.close()
        if claude is not None:
            await claude.close()

    controls = PipelineControls(
        pipeline=pipeline, contexts=contexts, bus=context.bus, on_close=[close_parts]
    )
    runtime = PipelineRuntime(
        context=context,
        pipeline=pipeline,
        controls=controls,
        selector=selector,
        router=router,
        contexts=contexts,
        stt=stt,
        claude=claude,
        satellites=SatelliteRegistry(context.bus, context.outputs),
        host_audio_mode=host_audio_mode,
    )
    return runtime


def setup_pipeline(app: web.Application, runtime: PipelineRuntime) -> None:
    """Make the runtime reachable from the handlers; start it with the app."""
    app[PIPELINE_KEY] = runtime

    async def start(_app: web.Application) -> None:
        runtime.selector.start()
        runtime.host_audio = await HostAudio.start(
            runtime.listener, runtime.context.outputs, runtime.host_audio_mode
        )
        if runtime.host_audio is not None and runtime.host_audio.speaker is not None:
            speaker = runtime.host_audio.speaker
            speaker.replies_elsewhere = lambda: runtime.satellites.replies_elsewhere(HOST)
        if runtime.host_audio is not None and runtime.host_audio.listener is not None:
            listener = runtime.host_audio.listener
            runtime.satellites.add(Satellite(HOST, "Host microphone", "host", listener))

    app.on_startup.append(start)
