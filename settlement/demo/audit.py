"""The auditor's part: seal the journal and sign a checkpoint, ask the API for an
export of the whole ledger, download it, and verify it offline with nothing but the
journal's public key."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from settlement.config import Settings
from settlement.db import SessionFactory
from settlement.demo.day import Api
from settlement.demo.errors import DemoStepFailed
from settlement.exports.verify import verify_path
from settlement.journal.jobs import checkpoint_now
from settlement.journal.keys import load_signing_key, read_public_key

EXPORT_TIMEOUT = 300


@dataclass
class AuditResult:
    tree_size: int = 0
    root_hash: str = ""
    export_id: int = 0
    archive: Path | None = None
    public_key: Path | None = None
    entries: int = 0
    postings: int = 0
    verified: bool = False
    failures: list[str] = field(default_factory=list)


def seal(factory: SessionFactory, settings: Settings) -> tuple[int, str]:
    """Seal every committed entry and sign a checkpoint of the tree; (size, root)."""
    latest = checkpoint_now(factory, load_signing_key(settings), batch=settings.journal_seal_batch, wait=True)
    if latest is None:
        raise DemoStepFailed("nothing was sealed: the ledger is empty")
    return latest.tree_size, latest.root_hash.hex()


def export_and_verify(api_url: str, auditor_key: str, settings: Settings, out: Path) -> AuditResult:
    """Export as the auditor (CSV), download the archive and the public key, verify."""
    result = AuditResult()
    api = Api(api_url, auditor_key)
    try:
        job = api.call("POST", "/v1/exports", json={"format": "csv"}, expect=(202,)).json()
        deadline = time.monotonic() + EXPORT_TIMEOUT
        while job["status"] not in ("done", "failed"):
            if time.monotonic() > deadline:
                raise DemoStepFailed(f"export {job['id']} did not finish in {EXPORT_TIMEOUT} s")
            time.sleep(0.1)
            job = api.get(f"/v1/exports/{job['id']}")
        if job["status"] != "done":
            error = job.get("error") or {}
            raise DemoStepFailed(f"export {job['id']} failed: [{error.get('code')}] {error.get('message')}")
        result.export_id = int(job["id"])
        result.entries, result.postings = int(job["entries"] or 0), int(job["postings"] or 0)
        out.mkdir(parents=True, exist_ok=True)
        result.archive = out / f"settlement-export-{job['id']}.zip"
        result.archive.write_bytes(api.call("GET", str(job["download_url"])).content)
        key = api.get("/v1/journal/public-key")
        result.public_key = out / "journal-public-key.pem"
        result.public_key.write_text(str(key["public_key_pem"]))
    finally:
        api.close()
    report = verify_path(result.archive, read_public_key(result.public_key, settings.journal_origin))
    result.verified = report.ok
    result.failures = [str(f) for f in report.failures]
    result.tree_size, result.root_hash = report.tree_size, report.root_hash
    return result
