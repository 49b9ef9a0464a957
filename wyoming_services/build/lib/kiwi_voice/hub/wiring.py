"""Wiring the hub's parts into one aiohttp application: the context, the voice pipeline and
owner approvals (docs/approvals.md).

`kiwi-hub` serves what `build_hub` returns, and tests that run the hub in-process call it too,
so they exercise the wiring that ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from .app import build_app
from .approvals.runtime import ApprovalsRuntime
from .approvals.setup import APPROVAL_ENDPOINTS, build_approvals, setup_approvals
from .context import HubContext, build_context
from .options import HubOptions
from .pipeline.runtime import PipelineRuntime
from .pipeline.setup import PIPELINE_ENDPOINTS, build_pipeline, setup_pipeline


@dataclass(frozen=True)
class WiredHub:
    app: web.Application
    context: HubContext  # with the pipeline's controls in place
    pipeline: PipelineRuntime
    approvals: ApprovalsRuntime


def build_hub(options: HubOptions, environ: Mapping[str, str]) -> WiredHub:
    """The hub's application with every part wired in, not yet started."""
    context = build_context(options, environ)
    approvals = build_approvals(context, environ)
    context, pipeline = build_pipeline(
        context,
        environ,
        approvals=approvals.gate,
        tools=approvals.tools,
        speakers=approvals.speakers,
    )
    app = build_app(context, (*PIPELINE_ENDPOINTS, *APPROVAL_ENDPOINTS))
    setup_pipeline(app, pipeline)
    setup_approvals(app, approvals, pipeline)
    return WiredHub(app=app, context=context, pipeline=pipeline, approvals=approvals)
