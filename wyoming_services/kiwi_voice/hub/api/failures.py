"""A failed call to another service: tell event listeners (ERROR), answer with a coded 5xx."""

from __future__ import annotations

import logging

from kiwi_voice.hub.errors import ApiError, ServiceError, from_service_error
from kiwi_voice.hub.event_payloads import EventType, error
from kiwi_voice.hub.events import EventBus

_LOGGER = logging.getLogger(__name__)


def service_failed(bus: EventBus, err: ServiceError) -> ApiError:
    _LOGGER.warning("%s service failed: %s (%s)", err.service, err.message, err.code)
    bus.publish(
        EventType.ERROR, error(err.message, err.service, err.code, setting=err.setting), err.service
    )
    return from_service_error(err)
