"""Wiring approvals into the hub (docs/approvals.md; `kiwi_voice.hub.wiring.build_hub` shows
the order: build_approvals before build_pipeline, setup_approvals after setup_pipeline).

On start the registry restores what an earlier run left pending and the Telegram bot connects
in the background; on shutdown the bot stops and pending requests stay in kiwi.db.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from kiwi_voice.hub.context import HubContext
from kiwi_voice.hub.endpoint import Endpoint
from kiwi_voice.hub.routing.router import Router

from . import api
from .followup import ApprovedWork, FollowUp, Speak
from .gate import OwnerApprovalGate
from .guest_learning import LearningSpeakers
from .ha_actions import HomeAssistantActions
from .home_guard import HomeGuard
from .home_state import HomeStateReader
from .registry import ApprovalRegistry
from .runtime import APPROVALS_KEY, ApprovalsRuntime
from .targets import TargetResolver
from .telegram_config import TelegramConfig
from .tools import HomeAssistantTools

_LOGGER = logging.getLogger(__name__)
APPROVAL_ENDPOINTS: tuple[Endpoint, ...] = api.ENDPOINTS


def build_approvals(context: HubContext, environ: Mapping[str, str]) -> ApprovalsRuntime:
    registry = ApprovalRegistry(context.store, context.bus)
    actions = HomeAssistantActions(context.homeassistant)
    work = ApprovedWork(actions, context.bus)
    config = TelegramConfig.from_environ(environ, context.secrets.telegram_bot_token)
    telegram = None
    if config is not None:
        from .telegram import TelegramApprover  # python-telegram-bot only when it is used

        telegram = TelegramApprover(config, registry, context.store, context.bus)
    gate = OwnerApprovalGate(
        registry=registry,
        settings=context.settings,
        work=work,
        telegram_configured=lambda: telegram is not None,
        state=context.state,
    )
    guard = HomeGuard(
        resolver=TargetResolver(context.homeassistant, HomeStateReader(context.homeassistant)),
        gate=gate,
        settings=context.settings,
        registry=registry,
    )
    # Every command for HA's conversation agent, whichever route it takes, passes the guard.
    context.homeassistant.set_guard(guard)
    return ApprovalsRuntime(
        registry=registry,
        gate=gate,
        tools=HomeAssistantTools(actions, guard),
        actions=actions,
        work=work,
        followup=FollowUp(registry, work),
        telegram=telegram,
        speakers=LearningSpeakers(context.speakers, context.settings),
    )


def setup_approvals(
    app: web.Application,
    approvals: ApprovalsRuntime,
    *,
    router: Router,
    speak: Speak,
) -> None:
    """Reach the pipeline's router and voice (to carry out and announce late decisions),
    start and stop with the app."""
    app[APPROVALS_KEY] = approvals
    approvals.work.attach_router(router)
    approvals.followup.attach_speaker(speak)

    async def start(_app: web.Application) -> None:
        pending = approvals.registry.restore()
        if pending:
            _LOGGER.info("%d approval request(s) still pending from before", len(pending))
        if approvals.telegram is not None:
            approvals.telegram.start()
        else:
            _LOGGER.info("Telegram approvals are not configured")

    async def stop(_app: web.Application) -> None:
        # on_shutdown: before the context closes kiwi.db.
        if approvals.telegram is not None:
            await approvals.telegram.stop()
        await approvals.followup.close()
        approvals.registry.close()
        await approvals.actions.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
