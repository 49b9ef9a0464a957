"""GET /api/approvals (what waits for the owner) and POST /api/approvals/{request_id} (answer it).

The dashboard and Home Assistant's kiwi.approve / kiwi.deny actions answer through the latter;
an id Kiwi does not know is 404 `approval_not_found`, one already decided 409
`approval_already_resolved` (the first answer stands).
"""

from __future__ import annotations

from kiwi_voice.hub.endpoint import Call, Endpoint
from kiwi_voice.hub.errors import ApiError, not_found

from .model import Approval
from .protocol import (
    ApprovalAnswerRequest,
    ApprovalAnswerResponse,
    ApprovalsResponse,
    PendingApproval,
    RequestId,
)
from .registry import AlreadyResolved, UnknownApproval
from .runtime import APPROVALS_KEY

TAG = "approvals"


def pending_approval(approval: Approval) -> PendingApproval:
    return {
        "request_id": approval.request_id,
        "kind": approval.kind,
        "command": approval.command,
        "speaker": approval.speaker,
        "created_at": approval.created_at,
        "expires_at": approval.expires_at,
    }


async def get_approvals(call: Call) -> ApprovalsResponse:
    registry = call.request.app[APPROVALS_KEY].registry
    return {"approvals": [pending_approval(a) for a in registry.pending()]}


async def post_approval(call: Call) -> ApprovalAnswerResponse:
    registry = call.request.app[APPROVALS_KEY].registry
    request_id = call.path_param("request_id")
    try:
        decided = registry.resolve(request_id, approved=call.body["approved"], by="api")
    except UnknownApproval as err:
        raise not_found("approval_not_found", f"no approval request {request_id!r}") from err
    except AlreadyResolved as err:
        raise ApiError(
            409,
            "approval_already_resolved",
            f"{request_id} was already {err.approval.status}; the first answer stands",
        ) from err
    return {
        "request_id": decided.request_id,
        "approved": decided.approved,
        "status": "approved" if decided.approved else "denied",
    }


ENDPOINTS = (
    Endpoint(
        method="GET",
        path="/api/approvals",
        handler=get_approvals,
        summary="Approval requests waiting for the owner's answer",
        tag=TAG,
        response=ApprovalsResponse,
    ),
    Endpoint(
        method="POST",
        path="/api/approvals/{request_id}",
        handler=post_approval,
        summary="Approve or deny a pending request (dashboard, kiwi.approve / kiwi.deny)",
        tag=TAG,
        request=ApprovalAnswerRequest,
        response=ApprovalAnswerResponse,
        path_params={"request_id": RequestId},
        errors=(404, 409),
        description=(
            "Each request is decided once, by whichever answer comes first (Telegram, this "
            "endpoint, the owner's voice, or its deadline)."
        ),
    ),
)
