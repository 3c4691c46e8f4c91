"""The dashboard of reconciliation runs, a run's detail, and its results as CSV."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from adapters.registry import default_registry
from settlement.console import queries
from settlement.console.deps import ViewerDep, factory_of, reading
from settlement.console.forms import MAX_ID, Fields
from settlement.console.rendering import render
from settlement.reconciliation.models import Outcome, RunStatus
from settlement.reconciliation.schemas import RunOut
from settlement.reconciliation.service import files, queue, reports, runs

router = APIRouter()
PAGE = 25
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str | None, Query(max_length=100)]


def known_rails() -> list[str]:
    """Settlement files come from the installed rails; statements are the bank's."""
    return [*default_registry().names(), "bank"]


def outcome_chart(outcomes: dict[str, int]) -> dict[str, Any]:
    """Bars of the outcome counts (geometry from the run report) and the same counts in words."""
    chart = reports.chart(outcomes)
    chart["text"] = ", ".join(f"{b['count']} {b['label']}" for b in chart["bars"] if b["count"]) or "no outcomes"
    return chart


@router.get("/", name="dashboard")
def dashboard(*, request: Request, viewer: ViewerDep, rail: Text = None, status: Text = None,
              before: Text = None) -> Response:
    fields = Fields()
    rail_value = fields.choice("rail", rail, known_rails(), "Rail")
    status_value = fields.choice("status", status, [s.value for s in RunStatus], "Status")
    cursor = fields.integer("before", before, "The page cursor")
    context: dict[str, Any] = {"section": "runs", "rails": known_rails(), "statuses": [s.value for s in RunStatus],
                               "filters": {"rail": rail or "", "status": status or ""}, "field_errors": fields.errors}
    with reading(request) as session:
        context["counts"] = queue.counts(session)
        if fields.errors:
            context.update(runs=[], chart=None, older=None, error="Some filters cannot be used; see below.")
            return render(request, "dashboard.html", viewer=viewer, status=422, context=context)
        found = runs.list_runs(session, rail=rail_value, status=status_value, before=cursor, limit=PAGE + 1)
        page = found[:PAGE]
        per_run = queries.exceptions_per_run(session, [r.id for r in page])
        rows = []
        totals = {o.value: 0 for o in Outcome}
        for run in page:
            outcomes = dict((run.summary or {}).get("outcomes") or {})
            if outcomes and not run.dry_run:
                for name, count in outcomes.items():
                    totals[name] = totals.get(name, 0) + int(count)
            rows.append({"run": run, "progress": RunOut.of(run, runs.steps(session, run.id)).progress_percent,
                         "file": (run.summary or {}).get("file") or {"filename": f"file {run.file_id}"},
                         "chart": outcome_chart(outcomes) if outcomes else None,
                         "exceptions": per_run.get(run.id, {})})
        context.update(runs=rows, chart=outcome_chart(totals) if any(totals.values()) else None,
                       older=page[-1].id if len(found) > PAGE else None)
    return render(request, "dashboard.html", viewer=viewer, context=context)


@router.get("/runs/{run_id}", name="run")
def run_page(*, request: Request, run_id: Id, viewer: ViewerDep, outcome: Text = None, after: Text = None,
             errors_after: Text = None) -> Response:
    fields = Fields()
    outcome_value = fields.choice("outcome", outcome, [o.value for o in Outcome], "Outcome")
    cursor = fields.integer("after", after, "The page cursor")
    errors_cursor = fields.integer("errors_after", errors_after, "The page cursor of unreadable lines")
    with reading(request) as session:
        run = runs.get_run(session, run_id)
        steps = runs.steps(session, run_id)
        context: dict[str, Any] = {
            "section": "runs", "run": run, "out": RunOut.of(run, steps), "file": files.get_file(session, run.file_id),
            "outcomes": [o.value for o in Outcome], "filters": {"outcome": outcome or ""},
            "field_errors": fields.errors, "exceptions": queries.exceptions_per_run(session, [run.id]).get(run.id, {}),
        }
        summary = run.summary or {}
        context["chart"] = outcome_chart(summary["outcomes"]) if summary.get("outcomes") else None
        context["amounts"] = summary.get("amounts") or {}
        if fields.errors:
            context.update(results=[], next_results=None, file_errors=[], next_errors=None,
                           error="Some filters cannot be used; see below.")
            return render(request, "run.html", viewer=viewer, status=422, context=context)
        results = reports.results(session, run_id, outcome=outcome_value, after=cursor or 0, limit=PAGE + 1)
        errors = files.file_errors(session, run.file_id, after=errors_cursor, limit=PAGE + 1)
        context.update(results=results[:PAGE], next_results=results[PAGE - 1]["match_id"] if len(results) > PAGE
                       else None, file_errors=errors[:PAGE],
                       next_errors=errors[PAGE - 1].id if len(errors) > PAGE else None)
    return render(request, "run.html", viewer=viewer, context=context)


@router.get("/runs/{run_id}/report.csv", name="run_csv")
def run_csv(*, request: Request, run_id: Id, viewer: ViewerDep) -> Response:
    with reading(request) as session:
        runs.get_run(session, run_id)
    factory = factory_of(request)

    def lines() -> Iterator[str]:
        # A session of its own that lives as long as the download: the rows are read a page at a time.
        with factory() as session:
            yield from reports.csv_lines(session, run_id)

    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="run-{run_id}.csv"'})
