"""``settlement journal``: keys, sealing, checkpoints and proofs.

The signing key is read from ``SETTLEMENT_JOURNAL_SIGNING_KEY_FILE`` (or
``SETTLEMENT_JOURNAL_SIGNING_KEY``); ``keygen`` creates one and never overwrites
one. Proofs print as JSON (hex hashes) for any RFC 9162 verifier.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from settlement.cli.common import errors, state
from settlement.db import unit_of_work
from settlement.journal import Journal
from settlement.journal.jobs import checkpoint_now, seal_pending
from settlement.journal.keys import keygen, load_signing_key
from settlement.journal.store import CheckpointRow

#: Hashes and paths are long: never wrap them.
console = Console(soft_wrap=True, highlight=False)

app = typer.Typer(help="The verifiable journal: keys, sealing, checkpoints, proofs.", no_args_is_help=True)


def checkpoint_json(c: CheckpointRow) -> dict[str, object]:
    return {"tree_size": c.tree_size, "root_hash": c.root_hash.hex(), "chain_head": c.chain_head.hex(),
            "created_at": c.created_at.isoformat(), "origin": c.origin, "key_id": c.key_id, "note": c.note}


@app.command("keygen")
def keygen_command(out: Path = typer.Option(..., "--out", "-o", help="private key file to create (PEM, mode 0600)"),
                   force: bool = typer.Option(False, "--force", help="overwrite existing key files")) -> None:
    """Create an Ed25519 signing key (FILE) and its public key (FILE.pub)."""
    private, public = keygen(out, force=force)
    console.print(f"private key written to {private} (keep it secret; set SETTLEMENT_JOURNAL_SIGNING_KEY_FILE)",
                  markup=False, soft_wrap=True)
    console.print(f"public key written to {public} (give it to auditors)", markup=False)


@app.command("seal")
def seal_command(ctx: typer.Context) -> None:
    """Seal every committed entry that can be sealed now."""
    settings = state(ctx).settings
    run = seal_pending(state(ctx).factory, batch=settings.journal_seal_batch)
    if run.busy:
        console.print(f"sealed {run.sealed} entries; another sealer is running and will seal the rest")
    else:
        console.print(f"sealed {run.sealed} entries; the journal holds {run.tree_size}")


@app.command("checkpoint")
def checkpoint_command(ctx: typer.Context) -> None:
    """Seal, then sign a checkpoint of the tree (needs the signing key)."""
    settings = state(ctx).settings
    latest = checkpoint_now(state(ctx).factory, load_signing_key(settings), batch=settings.journal_seal_batch,
                            wait=True)
    if latest is None:
        console.print("nothing is sealed yet: no checkpoint")
        return
    console.print(f"checkpoint {latest.tree_size} root {latest.root_hash.hex()} signed by key {latest.key_id}")


@app.command("status")
def status_command(ctx: typer.Context) -> None:
    """Journal size and the latest checkpoint."""
    with unit_of_work(state(ctx).factory) as session:
        status = Journal(session).status()
    console.print(f"sealed entries: {status.tree_size}")
    latest = status.latest_checkpoint
    if latest is None:
        console.print("no checkpoint yet")
    else:
        console.print(f"latest checkpoint: {latest.tree_size} at {latest.created_at.isoformat()} "
                      f"root {latest.root_hash.hex()} key {latest.key_id}")


@app.command("checkpoints")
def checkpoints_command(ctx: typer.Context, limit: int = typer.Option(20, "--limit")) -> None:
    """List checkpoints, newest first."""
    with unit_of_work(state(ctx).factory) as session:
        rows = Journal(session).list_checkpoints(limit=limit)
    table = Table("tree size", "created", "root", "key")
    for c in rows:
        table.add_row(str(c.tree_size), c.created_at.isoformat(timespec="seconds"), c.root_hash.hex(), c.key_id)
    console.print(table)


@app.command("proof")
def proof_command(ctx: typer.Context, entry_id: int = typer.Argument(...),
                  tree_size: int | None = typer.Option(None, "--tree-size",
                                                       help="checkpoint (default: latest)")) -> None:
    """Inclusion proof of an entry in a checkpoint, as JSON."""
    with unit_of_work(state(ctx).factory) as session:
        proof = Journal(session).inclusion_proof(entry_id, tree_size)
    print(json.dumps({"entry_id": proof.entry_id, "seq": proof.seq, "leaf_index": proof.leaf_index,  # noqa: T201
                      "tree_size": proof.tree_size, "leaf_hash": proof.leaf_hash.hex(),
                      "canonical": base64.b64encode(proof.canonical).decode(),
                      "audit_path": [h.hex() for h in proof.path], "checkpoint": checkpoint_json(proof.checkpoint)},
                     indent=2))


@app.command("consistency")
def consistency_command(ctx: typer.Context, first: int = typer.Argument(..., metavar="FROM"),
                        second: int | None = typer.Argument(None, metavar="TO")) -> None:
    """Consistency proof between two checkpoints (TO default: latest), as JSON."""
    with unit_of_work(state(ctx).factory) as session:
        proof = Journal(session).consistency_proof(first, second)
    print(json.dumps({"from": proof.old.tree_size, "to": proof.new.tree_size,  # noqa: T201
                      "proof": [h.hex() for h in proof.path], "from_checkpoint": checkpoint_json(proof.old),
                      "to_checkpoint": checkpoint_json(proof.new)}, indent=2))


@app.command("public-key")
def public_key_command(ctx: typer.Context) -> None:
    """Print the public key of the configured signing key (PEM)."""
    key = load_signing_key(state(ctx).settings).public
    print(key.pem, end="")  # noqa: T201
    errors.print(f"key id {key.key_id}, verifier key {key.note_key}", markup=False)
