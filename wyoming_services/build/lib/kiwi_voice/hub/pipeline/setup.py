"""Wiring the pipeline into the hub: the parts it is made of, the endpoints it adds, and its
start and stop.

    context = build_context(options, environ)
    context, runtime = build_pipeline(context, environ)
    app = build_app(context, PIPELINE_ENDPOINTS)
    setup_pipeline(app, runtime)

`build_pipeline` returns the context with the pipeline's `Controls` in place of BasicControls.
`approvals` is the seam for guest approvals: pass a gate that asks the owner (issue 6);
`tools` are offered to Claude when the speaker may control the home (hub/approvals/tools.py);
`speakers` identifies voices in turns (default: kiwi-speaker as is; approvals/guest_learning.py
wraps it to learn unknown voices as guests).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

from aiohttp import web

from kiwi_voice.hub.audio import api as audio_api
from kiwi_voice.hub.context import HubContext
from kiwi_voice.hub.endpoint import Endpoint
from kiwi_voice.hub.routing import api as conversation_api
from kiwi_voice.hub.routing.claude import ClaudeClient, ToolRunner
from kiwi_voice.hub.routing.contexts import SpeakerContexts
from kiwi_voice.hub.routing.router import Router
from kiwi_voice.hub.speakers import SpeakerIdentifier

from .controls import PipelineControls
from .engine import Pipeline
from .policy import ApprovalGate, RefusingApprovalGate, SpeakerPolicy
from .runtime import PIPELINE_KEY, PipelineRuntime
from .stt import SttClient
from .turn import TurnServices
from .wake_select import WakeEngineSelector

_LOGGER = logging.getLogger(__name__)
PIPELINE_ENDPOINTS: tuple[Endpoint, ...] = (*audio_api.ENDPOINTS, *conversation_api.ENDPOINTS)
HOST_AUDIO_MODES = ("auto", "on", "off")


def build_pipeline(
    context: HubContext,
    environ: Mapping[str, str],
    approvals: ApprovalGate | None = None,
    tools: ToolRunner | None = None,
    speakers: SpeakerIdentifier | None = None,
) -> tuple[HubContext, PipelineRuntime]:
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
        # Off only to measure what sentence streaming gains (bench/bench_pipeline.py).
        stream_sentences=environ.get("KIWI_SENTENCE_STREAMING", "on").strip().lower() != "off",
    )
    pipeline = Pipeline(services, context.outputs)
    selector = WakeEngineSelector(settings, context.options.wake_uri, context.pipeline_status)
    host_audio_mode = (environ.get("KIWI_HOST_AUDIO") or "auto").strip().lower()
    if host_audio_mode not in HOST_AUDIO_MODES:
        _LOGGER.warning("Ignoring KIWI_HOST_AUDIO=%r (auto, on or off)", host_audio_mode)
        host_audio_mode = "auto"
    runtime = PipelineRuntime(
        context=context,
        pipeline=pipeline,
        selector=selector,
        router=router,
        contexts=contexts,
        stt=stt,
        claude=claude,
        host_audio_mode=host_audio_mode,
    )

    async def close_parts() -> None:
        if runtime.host_audio is not None:
            await runtime.host_audio.close()
        await selector.close()
        if claude is not None:
            await claude.close()

    controls = PipelineControls(
        pipeline=pipeline,
        contexts=contexts,
        memory=context.conversation,
        bus=context.bus,
        on_close=[close_parts],
    )
    runtime.context = dataclasses.replace(context, controls=controls)
    return runtime.context, runtime


def setup_pipeline(app: web.Application, runtime: PipelineRuntime) -> None:
    """Make the runtime reachable from the handlers; start it with the app."""
    app[PIPELINE_KEY] = runtime

    async def start(_app: web.Application) -> None:
        from kiwi_voice.hub.audio.host import HostAudio

        runtime.selector.start()
        runtime.host_audio = await HostAudio.start(runtime, runtime.host_audio_mode)

    app.on_startup.append(start)
