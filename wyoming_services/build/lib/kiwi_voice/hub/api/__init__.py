"""The hub's REST and WebSocket endpoints, one module per area.

`ENDPOINTS` is what `app.build_app` registers and `openapi.build_document` describes. Other
parts of Kiwi pass their own endpoint groups to `build_app` alongside these.
"""

from __future__ import annotations

from kiwi_voice.hub.endpoint import Endpoint

from . import config, controls, events, homeassistant, souls, speakers, system

ENDPOINTS: tuple[Endpoint, ...] = (
    *system.ENDPOINTS,
    *config.ENDPOINTS,
    *speakers.ENDPOINTS,
    *souls.ENDPOINTS,
    *controls.ENDPOINTS,
    *homeassistant.ENDPOINTS,
    *events.ENDPOINTS,
)
