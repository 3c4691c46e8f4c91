"""The Merkle tree code against the RFC's definitions (tests/journal/rfc9162.py)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.journal import merkle
from tests.journal import rfc9162


def _leaves(n: int) -> list[bytes]:
    return [rfc9162.leaf_hash(f"entry {i}".encode()) for i in range(n)]


@pytest.mark.parametrize("n", [*range(1, 40), 63, 64, 65, 127, 128, 129, 1000])
def test_roots_and_proofs_match_the_rfc(n: int) -> None:
    leaves = _leaves(n)
    root = rfc9162.mth(leaves)
    assert merkle.root_of(leaves) == root
    frontier = merkle.Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    assert frontier.root() == root
    subtree = merkle.memory_subtree(leaves)
    for m in sorted({0, 1, n // 2, n - 2, n - 1} & set(range(n))):
        path = merkle.inclusion_path(m, n, subtree)
        assert rfc9162.verify_inclusion(m, n, leaves[m], path, root)
        assert merkle.verify_inclusion(m, n, leaves[m], path, root)
        if n > 1:
            assert not rfc9162.verify_inclusion(m, n, leaves[(m + 1) % n], path, root)
    for old in sorted({1, 2, n // 3, n - 1} & set(range(1, n))):
        proof = merkle.consistency_path(old, n, subtree)
        old_root = rfc9162.mth(leaves[:old])
        assert rfc9162.verify_consistency(old, n, old_root, root, proof)
        assert merkle.verify_consistency(old, n, old_root, root, proof)
        assert not rfc9162.verify_consistency(old, n, hashlib.sha256(b"x").digest(), root, proof)


def test_bad_proof_requests_are_refused() -> None:
    subtree = merkle.memory_subtree(_leaves(4))
    with pytest.raises(ValueError, match="outside"):
        merkle.inclusion_path(4, 4, subtree)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_path(5, 4, subtree)
    with pytest.raises(ValueError, match="no consistency proof"):
        merkle.consistency_path(0, 4, subtree)
    assert merkle.consistency_path(4, 4, subtree) == []
    assert not merkle.verify_inclusion(4, 4, b"", [], b"")


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(0, n))))
def test_any_run_of_leaves_with_the_nodes_around_it_rebuilds_the_root(case: tuple[int, int, int]) -> None:
    n, a, b = case
    a, b = min(a, b), max(a, b)
    leaves = _leaves(n)
    subtree = merkle.memory_subtree(leaves)
    merger = merkle.RangeMerger(n)
    merger.extend((s, e, subtree(s, e)) for s, e in merkle.covering_nodes(0, a, n))
    merger.extend((i, i + 1, leaves[i]) for i in range(a, b))
    merger.extend((s, e, subtree(s, e)) for s, e in merkle.covering_nodes(b, n, n))
    assert merger.root() == rfc9162.mth(leaves)


@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(0, n))))
def test_runs_merged_apart_rebuild_the_root_together(case: tuple[int, int, int]) -> None:
    """A second merger started at ``split`` takes the leaves from there to ``end`` and
    the nodes after; the first, having reached ``split``, takes its pieces."""
    n, split, end = case
    split, end = min(split, end), max(split, end)
    leaves = _leaves(n)
    subtree = merkle.memory_subtree(leaves)
    head, tail = merkle.RangeMerger(n), merkle.RangeMerger(n, start=split)
    head.extend((i, i + 1, leaves[i]) for i in range(split))
    tail.extend((i, i + 1, leaves[i]) for i in range(split, end))
    tail.extend((s, e, subtree(s, e)) for s, e in merkle.covering_nodes(end, n, n))
    pieces = tail.pieces()
    assert [p[:2] for p in pieces] == sorted(p[:2] for p in pieces)
    assert all(p[2] == subtree(p[0], p[1]) for p in pieces)
    head.extend(pieces)
    assert head.root() == rfc9162.mth(leaves)


def test_a_merger_started_later_refuses_pieces_elsewhere() -> None:
    merger = merkle.RangeMerger(8, start=4)
    with pytest.raises(merkle.MalformedRange, match="continue at 4"):
        merger.push(0, 1, b"a" * 32)
    merger.push(4, 5, b"a" * 32)
    with pytest.raises(merkle.MalformedRange, match="whole tree"):
        merger.root()


def test_range_merger_refuses_gaps_overlaps_and_non_nodes() -> None:
    merger = merkle.RangeMerger(5)
    merger.push(0, 1, b"a" * 32)
    with pytest.raises(merkle.MalformedRange):
        merger.push(2, 3, b"b" * 32)
    with pytest.raises(merkle.MalformedRange):
        merger.push(1, 3, b"b" * 32)
    with pytest.raises(merkle.MalformedRange, match="whole tree"):
        merger.root()
