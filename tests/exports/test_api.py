"""Exports over HTTP: an auditor asks for one, follows it, downloads the archive and
verifies it offline; refusals have their problem types; and across the whole API the
auditor reads everything and changes nothing."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from settlement.api.app import create_app
from settlement.api.deps import Guard
from settlement.api.routes import routers
from settlement.auth.service import Scope
from settlement.config import get_settings
from settlement.exports.verify import verify_path
from settlement.tasks.app import get_celery
from settlement.tasks.base import use_session_factory
from tests.api.conftest import bearer, make_key
from tests.conftest import Database
from tests.journal.factories import ORIGIN, Keys, settings_for

__all__ = ["make_key"]


@pytest.fixture
def api(book: Database, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The API, with the export task (inline, no broker) reading the same settings
    from the environment, as a worker would."""
    data = tmp_path / "data"
    for name, value in (("DATABASE_URL", book.url), ("JOURNAL_SIGNING_KEY_FILE", str(keys.private)),
                        ("JOURNAL_ORIGIN", ORIGIN), ("DATA_DIR", str(data)), ("BROKER_URL", "")):
        monkeypatch.setenv(f"SETTLEMENT_{name}", value)
    get_settings.cache_clear()
    get_celery.cache_clear()
    application = create_app(settings_for(book.url, keys, data), engine=book.engine)
    use_session_factory(application.state.factory)
    with TestClient(application, raise_server_exceptions=False) as client:
        yield client
    use_session_factory(None)
    get_settings.cache_clear()
    get_celery.cache_clear()


def test_an_auditor_exports_downloads_and_verifies(api: TestClient, keys: Keys, make_key: Callable[..., str],
                                                   tmp_path: Path) -> None:
    auditor = bearer(make_key("auditor"))
    created = api.post("/v1/exports", headers=auditor, json={"format": "xml", "reporting_currency": "RUB",
                                                             "rates": {"CNY": "12.3457"}})
    assert created.status_code == 202, created.text
    export_id = created.json()["id"]
    status = api.get(f"/v1/exports/{export_id}", headers=auditor).json()
    assert status["status"] == "done", status
    assert status["download_url"] == f"/v1/exports/{export_id}/archive"
    assert status["postings"] > 0
    assert status["tree_size"] == status["entries"]
    archive = api.get(status["download_url"], headers=auditor)
    assert archive.status_code == 200
    assert archive.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(archive.content)) as bundle:
        assert "manifest.json.sig" in bundle.namelist()
    saved = tmp_path / "export.zip"
    saved.write_bytes(archive.content)
    report = verify_path(saved, keys.verifier)
    assert report.failures == []
    listed = api.get("/v1/exports", headers=auditor).json()
    assert [e["id"] for e in listed["data"]] == [export_id]


def test_export_refusals(api: TestClient, make_key: Callable[..., str], monkeypatch: pytest.MonkeyPatch) -> None:
    auditor = bearer(make_key("auditor"))

    def problem(response: object) -> tuple[int, str]:
        assert hasattr(response, "json")
        return response.status_code, response.json()["type"]  # type: ignore[attr-defined]

    assert problem(api.post("/v1/exports", headers=auditor, json={"format": "pdf"})) == (
        422, "/problems/validation_error")
    assert problem(api.post("/v1/exports", headers=auditor, json={"from": "2026-02-01T00:00:00Z",
                                                                  "to": "2026-01-01T00:00:00Z"})) == (
        422, "/problems/invalid_period")
    assert problem(api.post("/v1/exports", headers=auditor, json={"format": "csv", "extra": 1})) == (
        422, "/problems/unknown_field")
    assert problem(api.post("/v1/exports", headers=auditor, json={"format": "xml", "rates": {"CNY": "abc"}})) == (
        422, "/problems/invalid_exchange_rate")
    assert problem(api.get("/v1/exports/999", headers=auditor)) == (404, "/problems/export_not_found")
    assert problem(api.post("/v1/exports", headers=bearer(make_key("checkout")), json={})) == (
        403, "/problems/forbidden")
    assert api.post("/v1/exports", json={}).status_code == 401
    # A multi-currency SAF-T export without the rate fails, and says why.
    failed = api.post("/v1/exports", headers=auditor, json={"format": "xml", "reporting_currency": "RUB"}).json()
    status = api.get(f"/v1/exports/{failed['id']}", headers=auditor).json()
    assert (status["status"], status["error"]["code"]) == ("failed", "missing_exchange_rate")
    assert problem(api.get(f"/v1/exports/{failed['id']}/archive", headers=auditor)) == (
        409, "/problems/export_not_ready")
    # Without a signing key nothing is exported (and no key is made up).
    monkeypatch.delenv("SETTLEMENT_JOURNAL_SIGNING_KEY_FILE")
    get_settings.cache_clear()
    keyless = api.post("/v1/exports", headers=auditor, json={}).json()
    status = api.get(f"/v1/exports/{keyless['id']}", headers=auditor).json()
    assert (status["status"], status["error"]["code"]) == ("failed", "signing_key_missing")


def _guards(dependant: object) -> list[Guard]:
    found = [dependant.call] if isinstance(getattr(dependant, "call", None), Guard) else []  # type: ignore[attr-defined]
    for child in getattr(dependant, "dependencies", []):
        found += _guards(child)
    return found


#: The one write the auditor may make: it produces a file and changes nothing.
AUDITOR_WRITES = {("POST", "/v1/exports")}


def test_the_auditor_reads_everything_and_changes_nothing(pg_database: Database, tmp_path: Path,
                                                          make_key: Callable[..., str]) -> None:
    checked = 0
    for router in routers():
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            guards = _guards(route.dependant)
            if not guards:
                continue  # health, problem pages, rail notifications (signed by the rails, not API keys)
            scopes = frozenset().union(*(g.scopes for g in guards))
            for method in route.methods - {"HEAD", "OPTIONS"}:
                checked += 1
                if method == "GET":
                    assert Scope.AUDITOR in scopes or scopes == {Scope.ADMIN}, (method, route.path)
                elif (method, route.path) not in AUDITOR_WRITES:
                    assert Scope.AUDITOR not in scopes, (method, route.path)
    assert checked > 20
    # And for real: every write answers the auditor 403 before anything else happens.
    app = create_app(settings_for(pg_database.url, None, tmp_path), engine=pg_database.engine)
    auditor = bearer(make_key("auditor"))
    with TestClient(app, raise_server_exceptions=False) as client:
        for router in routers():
            for route in router.routes:
                if not isinstance(route, APIRoute) or not _guards(route.dependant):
                    continue
                path = route.path.replace("{", "").replace("}", "")
                for method in route.methods - {"GET", "HEAD", "OPTIONS"}:
                    if (method, route.path) in AUDITOR_WRITES:
                        continue
                    response = client.request(method, path.replace("_id", "").replace("rail", "mir") or "/",
                                              headers=auditor, json={})
                    assert response.status_code == 403, (method, route.path, response.text)
