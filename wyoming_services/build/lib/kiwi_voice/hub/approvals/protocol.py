"""REST shapes of /api/approvals (Kiwi additions), declared once for validation and OpenAPI."""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict

from kiwi_voice.hub.shapes import Doc, Pattern

from .model import REQUEST_ID_PATTERN

RequestId = Annotated[str, Pattern(REQUEST_ID_PATTERN), Doc("apr_ + 16 hex digits")]


class PendingApproval(TypedDict):
    """A request waiting for the owner (APPROVAL_REQUESTED or EXEC_APPROVAL_REQUESTED)."""

    request_id: RequestId
    kind: Annotated[
        Literal["voice", "exec"],
        Doc("voice: a guest's command; exec: a sensitive action the assistant wants to run"),
    ]
    command: str
    speaker: Annotated[str | None, Doc("Who asked (voice); null for exec")]
    created_at: Annotated[float, Doc("Unix time")]
    expires_at: Annotated[float, Doc("Unix time: denied when unanswered by then")]


class ApprovalsResponse(TypedDict):
    approvals: Annotated[list[PendingApproval], Doc("Pending requests, oldest first")]


class ApprovalAnswerRequest(TypedDict):
    approved: bool


class ApprovalAnswerResponse(TypedDict):
    request_id: str
    approved: bool
    status: Literal["approved", "denied"]
