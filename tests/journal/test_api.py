"""The journal over HTTP: proofs checked by an independent RFC 9162 verifier written
in this test suite (tests/journal/rfc9162.py), signatures checked with the published
public key, and every refusal with its problem type."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from fastapi.testclient import TestClient

from settlement.api.app import create_app
from tests.api.conftest import bearer
from tests.conftest import Database
from tests.journal import rfc9162
from tests.journal.factories import Keys, checkpoint, open_book, post_many, post_variety, settings_for


def _signed_root(client: TestClient, headers: dict[str, str], checkpoint_doc: dict[str, object]) -> bytes:
    """The root of a checkpoint, after checking its signed note with the published key."""
    published = client.get("/v1/journal/public-key", headers=headers).json()
    public = load_pem_public_key(published["public_key_pem"].encode())
    note = str(checkpoint_doc["note"])
    body, _, signature_line = note.partition("\n\n")
    blob = base64.b64decode(signature_line.split(" ")[-1])
    public.verify(blob[4:], (body + "\n").encode())  # type: ignore[union-attr, call-arg]
    lines = body.split("\n")
    assert int(lines[1]) == checkpoint_doc["tree_size"]
    root = base64.b64decode(lines[2])
    assert root.hex() == checkpoint_doc["root_hash"]
    return root


def test_inclusion_and_consistency_proofs_verify_independently(
        pg_database: Database, keys: Keys, journal_api: TestClient, make_key: Callable[..., str]) -> None:
    headers = bearer(make_key("auditor"))
    open_book(pg_database.factory)
    ids = post_variety(pg_database.factory)
    sizes = [checkpoint(pg_database.factory, keys).tree_size]
    for batch in (1, 7, 16, 33):
        post_many(pg_database.factory, batch, f"b{batch}")
        sizes.append(checkpoint(pg_database.factory, keys).tree_size)
    listed = journal_api.get("/v1/journal/checkpoints", headers=headers, params={"limit": 2}).json()
    assert [c["tree_size"] for c in listed["data"]] == sizes[::-1][:2]
    rest = journal_api.get("/v1/journal/checkpoints", headers=headers, params={"cursor": listed["next_cursor"]})
    assert [c["tree_size"] for c in rest.json()["data"]] == sizes[::-1][2:]
    roots = {}
    for size in sizes:
        doc = journal_api.get(f"/v1/journal/checkpoints/{size}", headers=headers).json()
        roots[size] = _signed_root(journal_api, headers, doc)
    for entry_id in [ids[0], ids[5], ids[-1], ids[-2]]:
        for size in (sizes[0], sizes[-1]):
            proof = journal_api.get(f"/v1/journal/entries/{entry_id}/proof", headers=headers,
                                    params={"tree_size": size}).json()
            leaf = rfc9162.leaf_hash(base64.b64decode(proof["canonical"]))
            assert leaf.hex() == proof["leaf_hash"]
            path = [bytes.fromhex(h) for h in proof["audit_path"]]
            assert rfc9162.verify_inclusion(proof["leaf_index"], proof["tree_size"], leaf, path, roots[size])
            assert not rfc9162.verify_inclusion(proof["leaf_index"], proof["tree_size"], leaf, path,
                                                roots[sizes[1]])
    latest = journal_api.get(f"/v1/journal/entries/{ids[2]}/proof", headers=headers).json()
    assert latest["tree_size"] == sizes[-1]
    for first in sizes:
        for second in sizes:
            if first >= second:
                continue
            answer = journal_api.get("/v1/journal/consistency", headers=headers,
                                     params={"from": first, "to": second}).json()
            assert (answer["from"], answer["to"]) == (first, second)
            proof_path = [bytes.fromhex(h) for h in answer["proof"]]
            assert rfc9162.verify_consistency(first, second, roots[first], roots[second], proof_path)
            assert not rfc9162.verify_consistency(first, second, roots[second], roots[first], proof_path)
    same = journal_api.get("/v1/journal/consistency", headers=headers, params={"from": sizes[1], "to": sizes[1]})
    assert same.status_code == 200
    assert same.json()["proof"] == []


def test_public_key_is_the_configured_one(journal_api: TestClient, keys: Keys, make_key: Callable[..., str]) -> None:
    doc = journal_api.get("/v1/journal/public-key", headers=bearer(make_key("checkout"))).json()
    assert doc["public_key_pem"] == keys.public.read_text()
    assert doc["key_id"] == keys.verifier.key_id
    assert doc["algorithm"] == "Ed25519"


def test_refusals(pg_database: Database, keys: Keys, journal_api: TestClient, make_key: Callable[..., str]) -> None:
    headers = bearer(make_key("finance"))

    def problem(path: str, **params: object) -> tuple[int, str]:
        response = journal_api.get(path, headers=headers, params=params)
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        return response.status_code, response.json()["type"]

    assert problem("/v1/journal/checkpoints/latest") == (404, "/problems/checkpoint_not_found")
    open_book(pg_database.factory)
    post_many(pg_database.factory, 5, "x")
    checkpoint(pg_database.factory, keys)
    post_many(pg_database.factory, 3, "y")
    with pg_database.factory() as session:
        from sqlalchemy import text

        last = session.execute(text("SELECT max(id) FROM ledger_entries")).scalar_one()
    assert problem(f"/v1/journal/entries/{last}/proof") == (409, "/problems/entry_not_sealed")
    checkpoint(pg_database.factory, keys)
    assert problem(f"/v1/journal/entries/{last}/proof", tree_size=5) == (409, "/problems/entry_not_sealed")
    assert problem("/v1/journal/entries/999999/proof") == (404, "/problems/entry_not_found")
    assert problem(f"/v1/journal/entries/{last}/proof", tree_size=6) == (404, "/problems/checkpoint_not_found")
    assert problem(f"/v1/journal/entries/{last}/proof", tree_size=0) == (422, "/problems/validation_error")
    assert problem("/v1/journal/consistency", **{"from": 8, "to": 5}) == (422, "/problems/invalid_range")
    assert problem("/v1/journal/consistency", **{"from": 0}) == (422, "/problems/invalid_range")
    assert problem("/v1/journal/consistency", **{"from": 7}) == (404, "/problems/checkpoint_not_found")
    assert problem("/v1/journal/consistency", **{"from": "x"}) == (422, "/problems/validation_error")
    assert problem("/v1/journal/consistency") == (422, "/problems/validation_error")
    assert journal_api.get("/v1/journal/checkpoints").status_code == 401


def test_public_key_without_a_configured_key_is_a_clear_503(pg_database: Database, tmp_path: Path,
                                                             make_key: Callable[..., str]) -> None:
    app = create_app(settings_for(pg_database.url, None, tmp_path), engine=pg_database.engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/journal/public-key", headers=bearer(make_key("auditor")))
    assert response.status_code == 503
    assert response.json()["type"] == "/problems/signing_key_missing"
