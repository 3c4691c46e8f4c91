"""API shapes of the journal. Hashes are lowercase hex; signatures and canonical
bytes are base64."""

from __future__ import annotations

import base64
import datetime as dt

from pydantic import BaseModel, Field

from settlement.journal.keys import PublicKey
from settlement.journal.service import ConsistencyProof, InclusionProof
from settlement.journal.store import CheckpointRow


class PublicKeyOut(BaseModel):
    algorithm: str = "Ed25519"
    name: str = Field(description="Key name: the journal's origin, first line of every checkpoint")
    key_id: str = Field(description="Signed-note key ID: hex of SHA-256(name || 0x0A || 0x01 || key)[:4]")
    public_key_pem: str
    public_key: str = Field(description="Raw 32-byte public key, base64")
    note_verifier_key: str = Field(description="The key as a signed-note verifier key: name+keyid+base64")

    @classmethod
    def of(cls, key: PublicKey) -> PublicKeyOut:
        return cls(name=key.name, key_id=key.key_id, public_key_pem=key.pem,
                   public_key=base64.b64encode(key.raw).decode(), note_verifier_key=key.note_key)


class CheckpointOut(BaseModel):
    tree_size: int
    root_hash: str
    chain_head: str
    created_at: dt.datetime
    origin: str
    key_id: str
    signature: str = Field(description="Ed25519 signature of the note's body, base64")
    note: str = Field(description="The signed note (C2SP tlog-checkpoint), verifiable with the public key")

    @classmethod
    def of(cls, c: CheckpointRow) -> CheckpointOut:
        return cls(tree_size=c.tree_size, root_hash=c.root_hash.hex(), chain_head=c.chain_head.hex(),
                   created_at=c.created_at, origin=c.origin, key_id=c.key_id,
                   signature=base64.b64encode(c.signature).decode(), note=c.note)


class CheckpointList(BaseModel):
    data: list[CheckpointOut]
    next_cursor: str | None


class InclusionProofOut(BaseModel):
    entry_id: int
    seq: int = Field(description="Journal sequence number (leaf index + 1)")
    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || canonical)")
    canonical: str = Field(description="The entry's canonical bytes (version 1), base64")
    audit_path: list[str] = Field(description="RFC 9162 PATH(leaf_index, D[tree_size]), from the leaf up")
    checkpoint: CheckpointOut

    @classmethod
    def of(cls, p: InclusionProof) -> InclusionProofOut:
        return cls(entry_id=p.entry_id, seq=p.seq, leaf_index=p.leaf_index, tree_size=p.tree_size,
                   leaf_hash=p.leaf_hash.hex(), canonical=base64.b64encode(p.canonical).decode(),
                   audit_path=[h.hex() for h in p.path], checkpoint=CheckpointOut.of(p.checkpoint))


class ConsistencyProofOut(BaseModel):
    model_config = {"populate_by_name": True}

    first: int = Field(alias="from")
    second: int = Field(alias="to")
    proof: list[str] = Field(description="RFC 9162 PROOF(from, D[to])")
    from_checkpoint: CheckpointOut
    to_checkpoint: CheckpointOut

    @classmethod
    def of(cls, p: ConsistencyProof) -> ConsistencyProofOut:
        return cls(first=p.old.tree_size, second=p.new.tree_size, proof=[h.hex() for h in p.path],
                   from_checkpoint=CheckpointOut.of(p.old), to_checkpoint=CheckpointOut.of(p.new))
