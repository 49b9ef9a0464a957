"""Which actions the owner must approve: the `sensitive_actions` setting, matched against what a
call touches (targets.py), not against how the call was written.

The setting is a comma-separated list of patterns (shell wildcards allowed: `*garage*`). A call is
sensitive when a pattern matches, for any entity it touches: the entity id, its domain, the action
that reaches it (`cover.open_cover`), or its area, floor, device or labels (ids and names); or,
for the call itself and everything it runs, a `domain` or `domain.service` name. A call whose
targets cannot all be followed (`Resolution.unknown`) is sensitive too: when Kiwi cannot tell,
the owner decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from .targets import Resolution


@dataclass(frozen=True)
class Judgement:
    sensitive: bool
    reasons: tuple[str, ...]  # what matched (or could not be followed), for the owner to read
    entities: tuple[str, ...] = ()  # the sensitive entities it touches
    unknown: bool = False  # some of it could not be followed

    def summary(self, limit: int = 3) -> str:
        shown = "; ".join(self.reasons[:limit])
        more = len(self.reasons) - limit
        return f"{shown}; and {more} more" if more > 0 else shown


def patterns_of(setting: str) -> list[str]:
    return [entry.strip().lower() for entry in setting.split(",") if entry.strip()]


def judge(resolution: Resolution, setting: str) -> Judgement:
    patterns = patterns_of(setting)
    reasons: list[str] = [f"cannot tell: {what}" for what in resolution.unknown]
    entities: list[str] = []

    def matched(*names: str) -> str | None:
        return next((p for p in patterns for n in names if n and fnmatchcase(n.lower(), p)), None)

    for touch in resolution.touches:
        action_domain = touch.action.split(".", 1)[0]
        pattern = matched(touch.entity_id, touch.domain, touch.action, action_domain, *touch.names)
        if pattern is not None:
            reasons.append(f"{touch.describe()} matches {pattern!r}")
            entities.append(touch.entity_id)
    for service in dict.fromkeys(resolution.services):
        pattern = matched(service, service.split(".", 1)[0])
        if pattern is not None:
            reasons.append(f"{service} matches {pattern!r}")
    unique = tuple(dict.fromkeys(reasons))
    return Judgement(bool(unique), unique, tuple(dict.fromkeys(entities)), bool(resolution.unknown))
