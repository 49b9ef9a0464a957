"""Client library for the Kiwi hub: REST and the /api/events stream.

Nothing here imports Home Assistant, so it can be published on its own.
"""

from .client import KiwiClient
from .errors import (
    KiwiAuthenticationError,
    KiwiConnectionError,
    KiwiError,
    KiwiNotFoundError,
    KiwiResponseError,
)
from .events import Backoff, EventStreamListener, KiwiEventStream
from .models import (
    ConversationReply,
    Hello,
    HubConfig,
    HubInfo,
    HubStatus,
    KiwiEvent,
    Languages,
    ListenResult,
    SatelliteInfo,
    Soul,
    SpeakerProfile,
    TurnMetrics,
)

__all__ = [
    "Backoff",
    "ConversationReply",
    "EventStreamListener",
    "Hello",
    "HubConfig",
    "HubInfo",
    "HubStatus",
    "KiwiAuthenticationError",
    "KiwiClient",
    "KiwiConnectionError",
    "KiwiError",
    "KiwiEvent",
    "KiwiEventStream",
    "KiwiNotFoundError",
    "KiwiResponseError",
    "Languages",
    "ListenResult",
    "SatelliteInfo",
    "Soul",
    "SpeakerProfile",
    "TurnMetrics",
]
