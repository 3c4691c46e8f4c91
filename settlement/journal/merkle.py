"""Merkle trees as RFC 9162 (Certificate Transparency 2.0) section 2.1 defines them.

Pure functions, no database. ``MTH(D[n])`` of ``n`` leaves splits at ``k``, the
largest power of two smaller than ``n``: ``MTH = SHA-256(0x01 || MTH(D[0:k]) ||
MTH(D[k:n]))``; a leaf is ``SHA-256(0x00 || data)``. Every node of such a tree is
either a perfect subtree ``[i * 2^L, (i + 1) * 2^L)`` or a node of the right edge
``[a, n)``.

The proof builders take a ``subtree(start, end)`` callback giving ``MTH(D[start:end])``
for a node of the tree, so the same code serves an in-memory list (tests) and the
database (persisted subtree hashes). :func:`needed_subtrees` runs a builder with a
recording callback first, so the database answers every hash in one round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

SubtreeHash = Callable[[int, int], bytes]
_sha256 = hashlib.sha256


def hash_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size`` >= 2)."""
    if size < 2:
        raise ValueError("a tree of fewer than two leaves does not split")
    return 1 << ((size - 1).bit_length() - 1)


def is_perfect(start: int, end: int) -> bool:
    size = end - start
    return size > 0 and size & (size - 1) == 0 and start % size == 0


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of leaf hashes held in memory (``root_of([])`` is SHA-256 of nothing)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    return _mth(leaves, 0, len(leaves))


def _mth(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaves[start]
    k = split_point(end - start)
    return hash_children(_mth(leaves, start, start + k), _mth(leaves, start + k, end))


def memory_subtree(leaves: Sequence[bytes]) -> SubtreeHash:
    """A ``subtree`` callback over leaf hashes held in memory."""
    return lambda start, end: _mth(leaves, start, end)


def node_hash(start: int, end: int, perfect: Callable[[int, int], bytes]) -> bytes:
    """MTH(D[start:end]) of a node, from ``perfect(start, size)`` hashes of the
    perfect subtrees it decomposes into."""
    if is_perfect(start, end):
        return perfect(start, end - start)
    k = split_point(end - start)
    return hash_children(perfect(start, k), node_hash(start + k, end, perfect))


def inclusion_path(index: int, size: int, subtree: SubtreeHash) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1: sibling hashes from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    path: list[bytes] = []
    _path(index, 0, size, subtree, path)
    return path


def _path(m: int, start: int, end: int, subtree: SubtreeHash, out: list[bytes]) -> None:
    if end - start == 1:
        return
    k = split_point(end - start)
    if m < k:
        _path(m, start, start + k, subtree, out)
        out.append(subtree(start + k, end))
    else:
        _path(m - k, start + k, end, subtree, out)
        out.append(subtree(start, start + k))


def consistency_path(old_size: int, new_size: int, subtree: SubtreeHash) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1 (empty when m == n)."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from {old_size} to {new_size}")
    out: list[bytes] = []
    if old_size < new_size:
        _subproof(old_size, 0, new_size, True, subtree=subtree, out=out)
    return out


def _subproof(m: int, start: int, end: int, complete: bool, *, subtree: SubtreeHash, out: list[bytes]) -> None:
    n = end - start
    if m == n:
        if not complete:
            out.append(subtree(start, end))
        return
    k = split_point(n)
    if m <= k:
        _subproof(m, start, start + k, complete, subtree=subtree, out=out)
        out.append(subtree(start + k, end))
    else:
        _subproof(m - k, start + k, end, False, subtree=subtree, out=out)
        out.append(subtree(start, start + k))


def needed_subtrees(build: Callable[[SubtreeHash], object]) -> list[tuple[int, int]]:
    """The (start, end) nodes a proof builder asks for, in order, found by running
    it with a placeholder callback (the shape of a proof depends only on sizes)."""
    asked: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        asked.append((start, end))
        return b"\x00" * 32

    build(record)
    return asked


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = hash_children(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2 (sizes equal: the proof is empty and the roots equal)."""
    if not 0 < old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hash_children(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class Frontier:
    """The tree grown one leaf at a time from leaf 0, keeping only the roots of its
    perfect subtrees (at most log2(n) hashes): the root at any size in O(log n)."""

    __slots__ = ("_hashes", "_sizes", "size")

    def __init__(self) -> None:
        self._sizes: list[int] = []
        self._hashes: list[bytes] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        sizes, hashes = self._sizes, self._hashes
        size, node = 1, leaf
        while sizes and sizes[-1] == size:
            node = hash_children(hashes.pop(), node)
            size += sizes.pop()
        sizes.append(size)
        hashes.append(node)
        self.size += 1

    def root(self) -> bytes:
        if not self._hashes:
            return hashlib.sha256(b"").digest()
        node = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            node = hash_children(left, node)
        return node


class MalformedRange(ValueError):
    """Pieces given to :class:`RangeMerger` do not tile the tree."""


class RangeMerger:
    """Rebuild the root of a tree of ``size`` leaves from nodes given left to right
    (leaves recomputed from data, and hashes of the subtrees in between), merging
    two adjacent nodes as soon as they are siblings. Memory is O(log n).

    A merger may also start at ``start`` > 0: it then merges the nodes of
    ``[start, ...)`` only, and :meth:`pieces` hands them to a merger that has
    reached ``start`` (so two processes can each take a run of leaves)."""

    __slots__ = ("_stack", "_start", "size")

    def __init__(self, size: int, start: int = 0) -> None:
        self.size = size
        self._start = start
        self._stack: list[tuple[int, int, bytes]] = []

    @property
    def position(self) -> int:
        """Where the next piece must start."""
        return self._stack[-1][1] if self._stack else self._start

    def push(self, start: int, end: int, digest: bytes) -> None:
        stack = self._stack
        if end == start + 1 and end < self.size and (stack[-1][1] if stack else self._start) == start:
            # The common case, the next leaf away from the right edge: like a frontier, merge it
            # with the perfect subtrees it completes (there the general rule reduces to this one).
            width = 1
            while stack:
                a, _, left = stack[-1]
                if start - a != width or a % (width << 1):
                    break
                stack.pop()
                digest = _sha256(b"\x01" + left + digest).digest()
                start, width = a, width << 1
            stack.append((start, end, digest))
            return
        if start != self.position or not start < end <= self.size:
            raise MalformedRange(f"piece [{start}, {end}) does not continue at {self.position} "
                                 f"in a tree of {self.size}")
        if not self._is_node(start, end):
            raise MalformedRange(f"[{start}, {end}) is not a node of a tree of {self.size}")
        stack.append((start, end, digest))
        self._merge()

    def _merge(self) -> None:
        stack = self._stack
        while len(stack) >= 2:
            a, b, left = stack[-2]
            _, c, right = stack[-1]
            if b - a != split_point(c - a) or not self._is_node(a, c):
                break
            stack.pop()
            stack[-1] = (a, c, hash_children(left, right))

    def extend(self, pieces: Iterable[tuple[int, int, bytes]]) -> None:
        for start, end, digest in pieces:
            self.push(start, end, digest)

    def pieces(self) -> list[tuple[int, int, bytes]]:
        """The nodes merged so far, left to right: they tile ``[start, position)``."""
        return list(self._stack)

    def root(self) -> bytes:
        if self.size == 0 and not self._stack:
            return hashlib.sha256(b"").digest()
        if len(self._stack) != 1 or self._stack[0][:2] != (0, self.size):
            raise MalformedRange(f"the pieces cover [0, {self.position}) in {len(self._stack)} parts, "
                                 f"not the whole tree of {self.size}")
        return self._stack[0][2]

    def _is_node(self, start: int, end: int) -> bool:
        if is_perfect(start, end):
            return True
        # A node of the right edge: [a, n) with a aligned to twice its split point.
        return end == self.size and end - start >= 2 and start % (2 * split_point(end - start)) == 0


def covering_nodes(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """The fewest nodes of a tree of ``size`` leaves that tile ``[start, end)``, left
    to right (what an export ships for the leaves it leaves out)."""
    out: list[tuple[int, int]] = []
    _cover(0, size, start, end, out)
    return out


def _cover(a: int, b: int, start: int, end: int, out: list[tuple[int, int]]) -> None:
    if b <= start or a >= end:
        return
    if start <= a and b <= end:
        out.append((a, b))
        return
    k = split_point(b - a)
    _cover(a, a + k, start, end, out)
    _cover(a + k, b, start, end, out)
