"""One approval request: what waits for the owner's yes or no, and how it ended.

Two kinds share one registry and one REST endpoint:
- `voice`: a guest's actionable command (APPROVAL_REQUESTED / APPROVAL_RESOLVED);
- `exec`: a sensitive Home Assistant action the assistant wants to run
  (EXEC_APPROVAL_REQUESTED / EXEC_APPROVAL_RESOLVED).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, cast

from kiwi_voice.hub.event_payloads import ApprovalDecidedBy as DecidedBy

ApprovalKind = Literal["voice", "exec"]
ApprovalStatus = Literal["pending", "approved", "denied", "expired"]
REQUEST_ID_PREFIX = "apr_"
REQUEST_ID_PATTERN = r"apr_[0-9a-f]{16}"


def new_request_id() -> str:
    """Unique and unguessable (never a timestamp): `apr_` + 16 hex digits."""
    return REQUEST_ID_PREFIX + secrets.token_hex(8)


# Target keys other than entity_id, in the order HA's service target lists them.
TARGET_KEYS = ("device_id", "area_id", "floor_id", "label_id")


@dataclass(frozen=True, kw_only=True)
class ServiceCall:
    """A Home Assistant action: POST /api/services/<domain>/<service> with its target (entity
    ids, and devices, areas, floors, labels) and data."""

    domain: str
    service: str
    entity_ids: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    target: dict[str, tuple[str, ...]] = field(default_factory=dict)  # TARGET_KEYS -> ids

    @property
    def name(self) -> str:
        return f"{self.domain}.{self.service}"

    def describe(self) -> str:
        """What the owner reads: `lock.unlock lock.front_door area_id=garage code=1234`."""
        parts = [self.name, *self.entity_ids]
        parts += [f"{key}={','.join(ids)}" for key, ids in sorted(self.target.items()) if ids]
        if self.data:
            parts.append(", ".join(f"{key}={value}" for key, value in sorted(self.data.items())))
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "service": self.service,
            "entity_ids": list(self.entity_ids),
            "data": dict(self.data),
            "target": {key: list(ids) for key, ids in self.target.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ServiceCall:
        target = raw.get("target") if isinstance(raw.get("target"), dict) else {}
        return cls(
            domain=str(raw["domain"]),
            service=str(raw["service"]),
            entity_ids=tuple(str(e) for e in raw.get("entity_ids", ())),
            data=dict(raw.get("data") or {}),
            target={str(k): tuple(str(i) for i in v) for k, v in target.items()},
        )


@dataclass(frozen=True, kw_only=True)
class Approval:
    request_id: str
    kind: ApprovalKind
    command: str  # what the owner is asked about, as text
    created_at: float  # Unix time
    expires_at: float  # Unix time: denied when nobody answered by then
    language: str = "en"
    speaker: str | None = None  # voice: who asked
    speaker_id: str | None = None
    action: ServiceCall | None = None  # exec: the Home Assistant action to run
    status: ApprovalStatus = "pending"
    decided_by: DecidedBy | None = None
    decided_at: float | None = None

    @property
    def pending(self) -> bool:
        return self.status == "pending"

    @property
    def approved(self) -> bool:
        return self.status == "approved"

    def decided(self, approved: bool, by: DecidedBy, at: float) -> Approval:
        status: ApprovalStatus = (
            "approved" if approved else ("expired" if by == "timeout" else "denied")
        )
        return replace(self, status=status, decided_by=by, decided_at=at)

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["action"] = self.action.to_json() if self.action is not None else None
        return raw

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Approval:
        action = raw.get("action")
        return cls(
            request_id=str(raw["request_id"]),
            kind=cast(ApprovalKind, raw["kind"]),
            command=str(raw["command"]),
            created_at=float(raw["created_at"]),
            expires_at=float(raw["expires_at"]),
            language=str(raw.get("language") or "en"),
            speaker=raw.get("speaker"),
            speaker_id=raw.get("speaker_id"),
            action=ServiceCall.from_json(action) if isinstance(action, dict) else None,
            status=cast(ApprovalStatus, raw.get("status", "pending")),
            decided_by=raw.get("decided_by"),
            decided_at=raw.get("decided_at"),
        )
