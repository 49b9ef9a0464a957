"""Errors the hub answers with: `{"error": {"code", "message"}}` and a fitting HTTP status.

Handlers raise `ApiError`; the middleware in `middleware.py` turns it into JSON. Client mistakes are
always 4xx with a code a program can branch on and a message a person can act on.
"""

from __future__ import annotations

from typing import Any

import voluptuous as vol


class ApiError(Exception):
    """A request the hub refuses or could not complete, with the status to answer."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


def bad_request(code: str, message: str, field: str | None = None) -> ApiError:
    return ApiError(400, code, message, field)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def unavailable(code: str, message: str) -> ApiError:
    """A service the hub depends on cannot be reached right now (retrying later may work)."""
    return ApiError(503, code, message)


def from_service_error(err: ServiceError) -> ApiError:
    """The answer for a failed call to a service: 503 when unreachable, 502 for a bad answer."""
    if isinstance(err, ServiceUnavailable):
        return ApiError(503, err.code, err.message)
    return ApiError(502, err.code, err.message)


_VOLUPTUOUS_EXTRA_KEY = "extra keys not allowed"  # voluptuous has no class for this one


def from_invalid(error: vol.Invalid, prefix: str = "") -> ApiError:
    """Name the first offending field of a voluptuous failure, with a code for its kind."""
    first = error.errors[0] if isinstance(error, vol.MultipleInvalid) else error
    path = ".".join(str(part) for part in first.path)
    field = prefix + path if path else (prefix.rstrip(".") or None)
    if isinstance(first, vol.RequiredFieldInvalid):
        code, detail = "missing_field", "is required"
    elif first.error_message == _VOLUPTUOUS_EXTRA_KEY:
        code, detail = "unknown_field", "is not a field this endpoint accepts"
    else:
        code, detail = "invalid_value", first.error_message
    message = f"{field}: {detail}" if field else detail
    return bad_request(code, message, field)


# ---- failures of the services the hub depends on ------------------------------------------


class ServiceError(Exception):
    """A service the hub depends on refused a request (e.g. a Wyoming `error` event).

    `setting` names the setting or option to fill or change when that is the fix (it goes into
    the ERROR event, where the integration raises a repair issue for it)."""

    def __init__(self, service: str, code: str, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.service = service
        self.code = code
        self.message = message
        self.setting = setting


# The setting that names the model a service lacks (its `model_missing` errors).
MODEL_SETTINGS = {"stt": "stt_model", "tts": "tts_voice", "wake": "wake_word"}


def service_refused(service: str, code: str | None, text: str) -> ServiceError:
    """A service's Wyoming `error` event as a ServiceError; a missing model names its setting."""
    code = code or "error"
    setting = MODEL_SETTINGS.get(service) if code == "model_missing" else None
    return ServiceError(service, code, text, setting)


class ServiceUnavailable(ServiceError):
    """The service could not be reached, timed out or hung up."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(service, f"{service}_unavailable", message)


class ServiceProtocolError(ServiceError):
    """The service answered with something that does not fit the protocol."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(service, f"{service}_bad_response", message)
