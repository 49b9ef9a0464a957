"""The hub's instance id: made once, on the first start, and kept in the data dir.

`GET /api/health` reports it, and the Home Assistant integration uses it as the config entry's
unique id, so the same hub is one entry whether it was added by hand or discovered, and stays
that entry when its address changes.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from .auth import write_private_file

_INSTANCE_ID = re.compile(r"^[0-9a-f]{32}$")


def load_or_create_instance_id(path: Path) -> str:
    """The id stored at `path`; a new one when there is none (or it is not an id)."""
    try:
        stored = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        stored = ""
    if _INSTANCE_ID.match(stored):
        return stored
    instance_id = uuid.uuid4().hex
    write_private_file(path, instance_id + "\n")
    return instance_id
