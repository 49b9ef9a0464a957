"""A soul: a personality written as Markdown with YAML front matter.

---
id: comedian            # optional, defaults to the file name
name: Comedian
description: Funny and witty
nsfw: false
model: claude-haiku-4-5 # optional: the Claude model this soul uses (else the llm_model setting)
voice: en_US-ryan-high  # optional piper voice
speed: 1.1              # optional speech rate factor (piper's length scale is 1/speed)
---
You are Kiwi, ...        (the system prompt)

`style` and `temperature` (older souls have them) are read and ignored, with a warning: piper
voices have no speaking styles, and Claude's Messages API (this `anthropic` release) no longer
takes sampling parameters.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import voluptuous as vol
import yaml

_LOGGER = logging.getLogger(__name__)
SOUL_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)(.*)\Z", re.DOTALL)
_MAX_FILE_BYTES = 256 * 1024


def _text(max_length: int) -> vol.All:
    return vol.All(str, vol.Length(min=1, max=max_length))


_FRONT_MATTER_SCHEMA = vol.Schema(
    {
        vol.Optional("id"): vol.All(
            str, vol.Match(SOUL_ID, msg="must be lowercase a-z, 0-9, - or _")
        ),
        vol.Required("name"): _text(64),
        vol.Optional("description", default=""): vol.All(str, vol.Length(max=300)),
        vol.Optional("nsfw", default=False): bool,
        vol.Optional("model"): _text(128),
        vol.Optional("voice"): _text(128),
        vol.Optional("speed"): vol.All(vol.Coerce(float), vol.Range(min=0.5, max=2.0)),
        # Fields of older souls that nothing can use any more (see the module's docstring).
        vol.Optional("style"): object,
        vol.Optional("temperature"): object,
    },
    extra=vol.PREVENT_EXTRA,
)


_UNUSED_FIELDS = {
    "style": "piper voices have no speaking styles (choose a voice instead)",
    "temperature": "Claude's Messages API takes no sampling parameters any more",
}


class SoulFileError(ValueError):
    """A soul file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True, kw_only=True)
class Soul:
    id: str
    name: str
    description: str
    nsfw: bool
    model: str | None
    voice: str | None
    speed: float | None  # speech rate factor: piper's length scale is 1/speed
    system_prompt: str
    source: Literal["builtin", "user"]
    path: Path


def parse_soul(path: Path, source: Literal["builtin", "user"]) -> Soul:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise SoulFileError(f"{path.name}: larger than {_MAX_FILE_BYTES // 1024} KiB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SoulFileError(f"{path.name}: cannot be read ({err})") from err
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise SoulFileError(f"{path.name}: must start with YAML front matter between --- lines")
    try:
        raw: Any = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        raise SoulFileError(f"{path.name}: front matter is not valid YAML ({err})") from err
    if not isinstance(raw, dict):
        raise SoulFileError(f"{path.name}: front matter must be a mapping")
    try:
        meta = _FRONT_MATTER_SCHEMA(raw)
    except vol.Invalid as err:
        raise SoulFileError(f"{path.name}: {err}") from err
    for unused, why in _UNUSED_FIELDS.items():
        if unused in meta:
            _LOGGER.warning("%s: %s is ignored: %s", path.name, unused, why)
    soul_id = meta.get("id", path.stem)
    if not SOUL_ID.match(soul_id):
        raise SoulFileError(f"{path.name}: id {soul_id!r} must be lowercase a-z, 0-9, - or _")
    prompt = match.group(2).strip()
    if not prompt:
        raise SoulFileError(f"{path.name}: the system prompt (after the front matter) is empty")
    return Soul(
        id=soul_id,
        name=meta["name"],
        description=meta["description"],
        nsfw=meta["nsfw"],
        model=meta.get("model"),
        voice=meta.get("voice"),
        speed=meta.get("speed"),
        system_prompt=prompt,
        source=source,
        path=path,
    )
