"""Webhook endpoints (admin) and the event and delivery logs (admin, auditor)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Query, Security

from settlement.api.deps import ADMIN, Guard, SessionDep
from settlement.auth.service import Principal, Scope
from settlement.webhooks.models import EVENT_ID_PATTERN, DeliveryStatus
from settlement.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    EndpointCreate,
    EndpointList,
    EndpointOut,
    EndpointWithSecret,
    EventList,
    EventOut,
    ReplayRequest,
    SecretRotation,
)
from settlement.webhooks.service import endpoints as service

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
#: Managing endpoints (they hold secrets and decide where payment data goes): admin only.
Admin = Annotated[Principal, Security(ADMIN)]
#: The logs: the auditor reads everything (admin passes every guard).
LogReader = Annotated[Principal, Security(Guard(Scope.AUDITOR))]
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
EndpointId = Annotated[int, Path(ge=1, le=service.MAX_ID)]
Cursor = Annotated[str | None, Query(max_length=500)]


@router.post("/endpoints", status_code=201, response_model=EndpointWithSecret,
             summary="Register an endpoint; the answer carries its signing secret, shown only this once")
def create_endpoint(body: EndpointCreate, session: SessionDep, _: Admin) -> EndpointWithSecret:
    endpoint, secret = service.create_endpoint(session, url=body.url, event_types=body.event_types,
                                               description=body.description)
    return EndpointWithSecret.with_secret(endpoint, secret)


@router.get("/endpoints", response_model=EndpointList, summary="List endpoints, newest first")
def list_endpoints(session: SessionDep, _: Admin, active: bool | None = None, cursor: Cursor = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> EndpointList:
    page = service.list_endpoints(session, active=active, cursor=cursor, limit=limit)
    return EndpointList(data=[EndpointOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, summary="One endpoint")
def get_endpoint(endpoint_id: EndpointId, session: SessionDep, _: Admin) -> EndpointOut:
    return EndpointOut.of(service.get_endpoint(session, endpoint_id))


@router.post("/endpoints/{endpoint_id}/disable", response_model=EndpointOut,
             summary="Disable an endpoint and cancel its pending deliveries")
def disable_endpoint(endpoint_id: EndpointId, session: SessionDep, _: Admin) -> EndpointOut:
    return EndpointOut.of(service.disable_endpoint(session, endpoint_id))


@router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret,
             summary="Replace the signing secret; the old one keeps signing for a grace period")
def rotate_secret(endpoint_id: EndpointId, session: SessionDep, _: Admin,
                  body: SecretRotation | None = None) -> EndpointWithSecret:
    keep = dt.timedelta(seconds=(body or SecretRotation()).keep_previous_seconds)
    endpoint, secret = service.rotate_secret(session, endpoint_id, keep_previous_for=keep)
    return EndpointWithSecret.with_secret(endpoint, secret)


@router.post("/endpoints/{endpoint_id}/replay", status_code=202, response_model=DeliveryOut,
             summary="Deliver a recorded event to this endpoint again")
def replay(endpoint_id: EndpointId, body: ReplayRequest, session: SessionDep, _: Admin) -> DeliveryOut:
    return DeliveryOut.of(service.replay(session, endpoint_id, body.event_id))


@router.get("/endpoints/{endpoint_id}/deliveries", response_model=DeliveryList,
            summary="The endpoint's deliveries, newest first, each with its attempt log")
def list_deliveries(endpoint_id: EndpointId, session: SessionDep, _: LogReader,
                    status: DeliveryStatus | None = None, cursor: Cursor = None,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> DeliveryList:
    page = service.list_deliveries(session, endpoint_id, status=status, cursor=cursor, limit=limit)
    return DeliveryList(data=[DeliveryOut.of(view) for view in page.items], next_cursor=page.next_cursor)


@router.get("/events", response_model=EventList, summary="Recorded events, newest first")
def list_events(session: SessionDep, _: LogReader,
                event_type: Annotated[str | None, Query(alias="type", max_length=100, pattern=EVENT_TYPE_PATTERN,
                                                        description="e.g. payment.captured")] = None,
                cursor: Cursor = None, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> EventList:
    page = service.list_events(session, event_type=event_type, cursor=cursor, limit=limit)
    return EventList(data=[EventOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get("/events/{event_id}", response_model=EventOut, summary="One event")
def get_event(event_id: Annotated[str, Path(pattern=EVENT_ID_PATTERN)], session: SessionDep,
              _: LogReader) -> EventOut:
    return EventOut.of(service.get_event(session, event_id))
