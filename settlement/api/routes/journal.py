"""The verifiable journal: public key, signed checkpoints, inclusion and consistency
proofs. Readable by every scope (the marketplace may prove its own entries)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Security

from settlement.api.deps import CHECKOUT_READ, Id, SessionDep, settings
from settlement.auth.service import Principal
from settlement.config import Settings
from settlement.journal import Journal
from settlement.journal.errors import InvalidRange
from settlement.journal.keys import load_signing_key
from settlement.journal.schemas import (
    CheckpointList,
    CheckpointOut,
    ConsistencyProofOut,
    InclusionProofOut,
    PublicKeyOut,
)

router = APIRouter(prefix="/v1/journal", tags=["journal"])
Reader = Annotated[Principal, Security(CHECKOUT_READ)]


@router.get("/public-key", summary="The Ed25519 key that signs checkpoints and export manifests",
            response_model=PublicKeyOut)
def public_key(_: Reader, config: Annotated[Settings, Depends(settings)]) -> PublicKeyOut:
    return PublicKeyOut.of(load_signing_key(config).public)


@router.get("/checkpoints", summary="Signed checkpoints, newest first", response_model=CheckpointList)
def checkpoints(session: SessionDep, _: Reader,
                cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> CheckpointList:
    rows = Journal(session).list_checkpoints(before=int(cursor) if cursor else None, limit=limit + 1)
    page = rows[:limit]
    return CheckpointList(data=[CheckpointOut.of(c) for c in page],
                          next_cursor=str(page[-1].tree_size) if len(rows) > limit else None)


@router.get("/checkpoints/latest", summary="The latest signed checkpoint", response_model=CheckpointOut)
def latest_checkpoint(session: SessionDep, _: Reader) -> CheckpointOut:
    return CheckpointOut.of(Journal(session).latest_checkpoint())


@router.get("/checkpoints/{tree_size}", summary="The checkpoint of a tree size", response_model=CheckpointOut)
def checkpoint(tree_size: int, session: SessionDep, _: Reader) -> CheckpointOut:
    return CheckpointOut.of(Journal(session).get_checkpoint(tree_size))


@router.get("/entries/{entry_id}/proof", summary="Inclusion proof of an entry in a checkpoint (RFC 9162)",
            response_model=InclusionProofOut)
def inclusion_proof(entry_id: Id, session: SessionDep, _: Reader,
                    tree_size: Annotated[int | None, Query(ge=1, description="default: the latest checkpoint")] = None
                    ) -> InclusionProofOut:
    return InclusionProofOut.of(Journal(session).inclusion_proof(entry_id, tree_size))


@router.get("/consistency", summary="Consistency proof between two checkpoints (RFC 9162)",
            response_model=ConsistencyProofOut, response_model_by_alias=True)
def consistency(session: SessionDep, _: Reader,
                first: Annotated[int, Query(alias="from", description="the older checkpoint's tree size")],
                second: Annotated[int | None, Query(alias="to", description="default: the latest")] = None
                ) -> ConsistencyProofOut:
    if second is not None and first > second:
        raise InvalidRange(f"from ({first}) is larger than to ({second})", field="from")
    return ConsistencyProofOut.of(Journal(session).consistency_proof(first, second))
