"""Errors raised by the Kiwi hub client."""

from __future__ import annotations


class KiwiError(Exception):
    """Base of every error the Kiwi hub client raises.

    ``code`` is the hub's machine-readable error code when it sent one (for example
    ``unknown_soul``), so callers can map it to a message a user can act on.
    """

    def __init__(self, message: str, *, code: str | None = None) -> None:
        """Keep the hub's error code beside the message."""
        super().__init__(message)
        self.code = code


class KiwiConnectionError(KiwiError):
    """The hub could not be reached, timed out, or dropped the connection."""


class KiwiAuthenticationError(KiwiError):
    """The hub refused the token (HTTP 401/403 or an auth close frame)."""


class KiwiResponseError(KiwiError):
    """The hub answered with an error status or a body the client cannot read."""

    def __init__(self, message: str, *, status: int, code: str | None = None) -> None:
        """Keep the HTTP status for callers that branch on it."""
        super().__init__(message, code=code)
        self.status = status


class KiwiNotFoundError(KiwiResponseError):
    """The hub does not know the resource or endpoint (HTTP 404)."""
