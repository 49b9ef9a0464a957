"""The hub's parts, built once and handed to every route handler (no global state, no god object).

Each field is an object with one concern; handlers use the ones they need. The parts built on
top of these (the voice pipeline, approvals: hub/wiring.py) get the same context and keep what
they add to themselves; the REST controls, which the pipeline provides, are handed to
`build_app` beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import __version__
from .assist_turns import AssistTurns
from .auth import load_or_create_token, masked
from .event_payloads import EventType, config_changed
from .events import EventBus
from .homeassistant import HomeAssistantClient
from .identity import load_or_create_instance_id
from .lifecycle import Lifecycle
from .options import HubOptions, Secrets
from .pipeline_status import PipelineStatus
from .playback import PlaybackOutputs
from .presence import ActiveSpeaker
from .settings import SettingsStore, defaults_from_environ, environment_values
from .souls import ActiveSoul, SoulRegistry
from .speaker_links import SpeakerLinks
from .speakers import SpeakersClient
from .state import StateMachine
from .store import Store
from .stt_models import SttModelControl, SttModelKeeper
from .tts import TtsClient, VoiceChooser

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class HubContext:
    options: HubOptions
    secrets: Secrets
    token: str
    instance_id: str  # identity.py: stable across restarts and address changes
    version: str
    started_at: float  # time.monotonic() at start
    store: Store
    bus: EventBus
    state: StateMachine
    settings: SettingsStore
    soul_registry: SoulRegistry
    souls: ActiveSoul
    speakers: SpeakersClient
    speaker_links: SpeakerLinks  # each profile's HA person/user and soul
    tts: TtsClient
    voices: VoiceChooser  # which voice speaks a language
    stt_models: SttModelKeeper  # kiwi-stt runs the stt_model / stt_device settings
    homeassistant: HomeAssistantClient
    outputs: PlaybackOutputs
    presence: ActiveSpeaker
    pipeline_status: PipelineStatus  # latest turn metrics, wake engine (pipeline_status.py)
    lifecycle: Lifecycle
    assist: AssistTurns  # Assist turns through Kiwi's Wyoming services (assist_turns.py)
    # Open WebSockets (events, audio) and their requests, closed with a reason at shutdown.
    websockets: dict[web.WebSocketResponse, web.BaseRequest] = field(default_factory=dict)

    @property
    def uptime_seconds(self) -> int:
        return int(time.monotonic() - self.started_at)

    async def close(self) -> None:
        await self.stt_models.close()
        await self.homeassistant.close()
        self.store.close()


def build_context(options: HubOptions, environ: Mapping[str, str]) -> HubContext:
    """Open the data dir and wire the parts together. Call inside the running event loop."""
    options.data_dir.mkdir(parents=True, exist_ok=True)
    token, created = load_or_create_token(options.token_file)
    if created:
        _LOGGER.warning("Created the API token %s (stored in %s)", token, options.token_file)
    else:
        _LOGGER.info("API token %s (in %s)", masked(token), options.token_file)

    secrets = Secrets.from_environ(environ)
    store = Store(options.database)
    bus = EventBus(store, log_capacity=options.event_log_size)
    settings = SettingsStore(store, defaults_from_environ(environ), environment_values(environ))
    settings.on_change(
        lambda changed: bus.publish(EventType.CONFIG_CHANGED, config_changed(changed), "settings")
    )
    state = StateMachine(bus)
    registry = SoulRegistry(options.souls_dir)
    souls = ActiveSoul(registry, settings, store, bus, options.initial_soul)
    tts = TtsClient(options.tts_uri)
    return HubContext(
        options=options,
        secrets=secrets,
        token=token,
        instance_id=load_or_create_instance_id(options.instance_file),
        version=__version__,
        started_at=time.monotonic(),
        store=store,
        bus=bus,
        state=state,
        settings=settings,
        soul_registry=registry,
        souls=souls,
        speakers=SpeakersClient(options.speaker_uri),
        speaker_links=SpeakerLinks(store),
        tts=tts,
        voices=VoiceChooser(tts),
        stt_models=SttModelKeeper(SttModelControl(options.stt_uri, bus), settings, bus),
        homeassistant=HomeAssistantClient(settings, secrets.homeassistant_token, options.in_addon),
        outputs=PlaybackOutputs(),
        presence=ActiveSpeaker(bus),
        pipeline_status=PipelineStatus(bus),
        lifecycle=Lifecycle(bus),
        assist=AssistTurns(state),
    )


def describe(context: HubContext) -> dict[str, Any]:
    """What the start-up log line says about the hub's surroundings (no secrets)."""
    return {
        "data_dir": str(context.options.data_dir),
        "event_seq": context.bus.last_seq,
        "soul": context.souls.current().id,
        "speaker_uri": context.options.speaker_uri,
        "tts_uri": context.options.tts_uri,
    }
