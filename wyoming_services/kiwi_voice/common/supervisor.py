"""The Home Assistant Supervisor, as an add-on reaches it: named once, for the launcher and the hub.

Discovery posts to `<url>/discovery`; Home Assistant's API is the Supervisor's proxy `<url>/core`
(the add-on's `homeassistant_api`). KIWI_SUPERVISOR_URL points both elsewhere (the image smoke
test's fake Supervisor).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SUPERVISOR_URL_VARIABLE = "KIWI_SUPERVISOR_URL"
DEFAULT_SUPERVISOR_URL = "http://supervisor"


def supervisor_url(environ: Mapping[str, str] | None = None) -> str:
    """The Supervisor's base URL, without a trailing slash."""
    env = os.environ if environ is None else environ
    return (env.get(SUPERVISOR_URL_VARIABLE) or DEFAULT_SUPERVISOR_URL).rstrip("/")


def core_api_url(environ: Mapping[str, str] | None = None) -> str:
    """Home Assistant's API through the Supervisor's proxy."""
    return f"{supervisor_url(environ)}/core"
