"""The verifiable journal: sealing ledger entries into a hash chain and an RFC 9162
Merkle tree, signed checkpoints, inclusion and consistency proofs.

    from settlement.journal import Journal
    Journal(session).seal()
"""

from settlement.journal.service import ConsistencyProof, InclusionProof, Journal, JournalStatus

__all__ = ["ConsistencyProof", "InclusionProof", "Journal", "JournalStatus"]
