"""Notifications from the rails. No API key: each is authenticated by the rail's own
signature, which the rail's adapter verifies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from settlement.api.routes.payments import Ctx, problems
from settlement.payments.service import notifications

router = APIRouter(prefix="/v1/notifications", tags=["notifications"])

#: Notifications larger than this are refused before they are stored.
MAX_BODY = 256 * 1024


@router.post("/{rail}", summary="A rail's asynchronous notification (signed by the rail)",
             response_class=Response, responses={200: {"description": "The rail's acknowledgement",
                                                       "content": {"text/plain": {}}},
                                                  **problems(413)})
async def receive(rail: str, request: Request, ctx: Ctx) -> Response:
    from starlette.concurrency import run_in_threadpool

    from settlement.payments.errors import NotificationTooLarge

    body = await request.body()
    if len(body) > MAX_BODY:
        raise NotificationTooLarge(f"notification of {len(body)} bytes exceeds {MAX_BODY}", limit=MAX_BODY)
    received = await run_in_threadpool(notifications.receive, ctx, rail, dict(request.headers), body)
    ack = received.ack
    return Response(ack.body, status_code=ack.status_code, media_type=ack.content_type)
