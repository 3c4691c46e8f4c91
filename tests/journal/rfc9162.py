"""An independent verifier written from RFC 9162 sections 2.1.1, 2.1.3.2 and 2.1.4.2
for the tests. It shares no code with settlement.journal: it reads hex and base64
as an outside auditor would and follows the RFC's numbered steps literally."""

from __future__ import annotations

import hashlib


def leaf_hash(data: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(bytes([0]) + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
    return hashlib.sha256(bytes([1]) + left + right).digest()


def mth(leaves: list[bytes]) -> bytes:
    """Section 2.1.1 by its definition (leaf hashes given)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(mth(leaves[:k]), mth(leaves[k:]))


def verify_inclusion(leaf_index: int, tree_size: int, hash_: bytes, inclusion_path: list[bytes],
                     root_hash: bytes) -> bool:
    """Section 2.1.3.2, steps 1 to 6."""
    if leaf_index >= tree_size:                       # 1
        return False
    fn, sn = leaf_index, tree_size - 1                # 2
    r = hash_                                         # 3
    for p in inclusion_path:                          # 4
        if sn == 0:                                   # 4a
            return False
        if fn % 2 == 1 or fn == sn:                   # 4b
            r = node(p, r)                            # 4b-i
            if fn % 2 == 0:                           # 4b-ii
                while not (fn % 2 == 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:                                         # 4c
            r = node(r, p)
        fn >>= 1                                      # 4d
        sn >>= 1
    return sn == 0 and r == root_hash                 # 5, 6


def verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                       consistency_path: list[bytes]) -> bool:
    """Section 2.1.4.2, steps 1 to 7 (for 0 < first < second)."""
    if not consistency_path:                          # 1
        return False
    path = list(consistency_path)
    if first & (first - 1) == 0:                      # 2: first is an exact power of 2
        path = [first_hash, *path]
    fn, sn = first - 1, second - 1                    # 3
    if fn % 2 == 1:                                   # 4
        while fn % 2 == 1:
            fn >>= 1
            sn >>= 1
    fr = sr = path[0]                                 # 5
    for c in path[1:]:                                # 6
        if sn == 0:                                   # 6a
            return False
        if fn % 2 == 1 or fn == sn:                   # 6b
            fr = node(c, fr)                          # 6b-i
            sr = node(c, sr)
            if fn % 2 == 0:                           # 6b-ii
                while not (fn % 2 == 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:                                         # 6c
            sr = node(sr, c)
        fn >>= 1                                      # 6d
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0  # 7
