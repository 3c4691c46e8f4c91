"""``settlement webhooks``: endpoints, the event and delivery logs, replays, and a
run of due retries (for machines without a Celery beat)."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from settlement.cli.common import console, state
from settlement.db import unit_of_work
from settlement.db.types import utcnow
from settlement.tasks.base import use_session_factory
from settlement.webhooks.models import DeliveryStatus
from settlement.webhooks.service import endpoints as service
from settlement.webhooks.service.delivery import RetryPolicy, deliver_once, due_deliveries

app = typer.Typer(help="Outgoing webhooks to the marketplace.", no_args_is_help=True)


def _stamp(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


@app.command("create")
def create(ctx: typer.Context, url: str = typer.Argument(..., help="http:// or https:// URL"),
           event: list[str] = typer.Option(..., "--event", "-e", help="payment.captured, payment.* or *; repeat"),
           description: str = typer.Option("", "--description", "-d")) -> None:
    """Register an endpoint and print its signing secret, shown only now."""
    with unit_of_work(state(ctx).factory) as session:
        endpoint, secret = service.create_endpoint(session, url=url, event_types=event, description=description)
        endpoint_id = endpoint.id
    console.print(f"endpoint {endpoint_id} ({', '.join(event)}); signing secret, shown only now:", markup=False)
    console.print(secret, markup=False)


@app.command("list")
def list_command(ctx: typer.Context, show_all: bool = typer.Option(False, "--all", help="include disabled")) -> None:
    """List endpoints (active ones unless --all)."""
    with unit_of_work(state(ctx).factory) as session:
        page = service.list_endpoints(session, active=None if show_all else True, limit=500)
        rows = [(e.id, e.url, ", ".join(e.event_types), e.active, e.created_at) for e in page.items]
    table = Table("id", "url", "events", "active", "created")
    for endpoint_id, url, events, active, created in rows:
        table.add_row(str(endpoint_id), url, events, "yes" if active else "no", _stamp(created))
    console.print(table)


@app.command("disable")
def disable(ctx: typer.Context, endpoint_id: int = typer.Argument(...)) -> None:
    """Disable an endpoint; its pending deliveries are cancelled."""
    with unit_of_work(state(ctx).factory) as session:
        service.disable_endpoint(session, endpoint_id)
    console.print(f"endpoint {endpoint_id} disabled")


@app.command("rotate-secret")
def rotate_secret(ctx: typer.Context, endpoint_id: int = typer.Argument(...),
                  keep_previous: int = typer.Option(86_400, "--keep-previous", min=0, max=7 * 86_400,
                                                    help="seconds the old secret keeps signing too")) -> None:
    """Give an endpoint a new secret (printed once); the old one signs too for a while."""
    with unit_of_work(state(ctx).factory) as session:
        _, secret = service.rotate_secret(session, endpoint_id, keep_previous_for=dt.timedelta(seconds=keep_previous))
    console.print(f"endpoint {endpoint_id}: new signing secret, shown only now:", markup=False)
    console.print(secret, markup=False)


@app.command("events")
def events(ctx: typer.Context, event_type: str | None = typer.Option(None, "--type", "-t"),
           limit: int = typer.Option(50, "--limit", "-n", min=1, max=500)) -> None:
    """Recorded events, newest first."""
    with unit_of_work(state(ctx).factory) as session:
        rows = [(e.public_id, e.type, e.key, e.created_at)
                for e in service.list_events(session, event_type=event_type, limit=limit).items]
    table = Table("id", "type", "key", "created")
    for public_id, kind, key, created in rows:
        table.add_row(public_id, kind, key, _stamp(created))
    console.print(table)


@app.command("deliveries")
def deliveries(ctx: typer.Context, endpoint_id: int = typer.Argument(...),
               status: DeliveryStatus | None = typer.Option(None, "--status", "-s"),
               limit: int = typer.Option(50, "--limit", "-n", min=1, max=200)) -> None:
    """An endpoint's deliveries, newest first, with every attempt."""
    with unit_of_work(state(ctx).factory) as session:
        views = service.list_deliveries(session, endpoint_id, status=status, limit=limit).items
        rows = [(v.delivery.id, v.event.public_id, v.event.type, v.delivery.status, v.delivery.next_attempt_at,
                 [(a.attempt, a.status_code, a.duration_ms, a.error) for a in v.attempts]) for v in views]
    table = Table("delivery", "event", "type", "status", "next attempt", "attempts (status, ms, error)")
    for delivery_id, public_id, kind, current, due, log in rows:
        tried = "; ".join(f"#{n} {code or '-'} {ms if ms is not None else '-'}ms{' ' + error if error else ''}"
                          for n, code, ms, error in log)
        table.add_row(str(delivery_id), public_id, kind, current, _stamp(due), tried)
    console.print(table)


@app.command("replay")
def replay(ctx: typer.Context, endpoint_id: int = typer.Argument(...), event_id: str = typer.Argument(...)) -> None:
    """Deliver a recorded event to an endpoint again."""
    cli = state(ctx)
    use_session_factory(cli.factory)
    with unit_of_work(cli.factory) as session:
        view = service.replay(session, endpoint_id, event_id)
        delivery_id = view.delivery.id
    console.print(f"delivery {delivery_id} of {event_id} to endpoint {endpoint_id} queued")


@app.command("retry-due")
def retry_due(ctx: typer.Context, limit: int = typer.Option(500, "--limit", "-n", min=1)) -> None:
    """Attempt every due delivery now, in this process (what the Celery beat's sweeper
    does when a broker runs)."""
    cli = state(ctx)
    policy = RetryPolicy.from_settings(cli.settings)
    with unit_of_work(cli.factory) as session:
        ids = due_deliveries(session, now=utcnow(), limit=limit)
    outcomes = [deliver_once(cli.factory, delivery_id, policy=policy) for delivery_id in ids]
    done = [o for o in outcomes if o is not None]
    delivered = sum(o.status == DeliveryStatus.DELIVERED for o in done)
    console.print(f"{len(done)} attempted: {delivered} delivered, {len(done) - delivered} not")
