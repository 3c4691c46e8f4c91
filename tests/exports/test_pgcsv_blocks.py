"""PostgreSQL's CSV export writes COPY's rows in blocks: the block size changes
nothing in the files, their hashes in the manifest, or the verification."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from settlement.exports import pgcsv
from settlement.exports.verify import verify_path
from tests.conftest import Database
from tests.exports.conftest import Exporter
from tests.journal.factories import Keys


def test_the_files_do_not_depend_on_the_block_size(book: Database, keys: Keys,
                                                   exporter: Callable[[Database], Exporter],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    whole = exporter(book)("csv", name="whole")
    seen: list[int] = []
    monkeypatch.setattr(pgcsv, "_BLOCK_ROWS", 7)
    real_copy = pgcsv._copy

    def counting(*args: object, **kwargs: object) -> tuple[str, int, int]:
        kwargs["progress"] = seen.append
        return real_copy(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pgcsv, "_copy", counting)
    pieces = exporter(book)("csv", name="pieces")
    for name in ("journal.csv", "statements.csv"):
        assert (pieces.directory / name).read_bytes() == (whole.directory / name).read_bytes()
    def listed(result: Any) -> dict[str, tuple[str, int]]:
        doc = json.loads((result.directory / "manifest.json").read_text())
        return {f["name"]: (f["sha256"], f["bytes"]) for f in doc["files"]}

    assert listed(pieces) == listed(whole)
    assert len(seen) > 4  # progress after every block of 7 rows
    assert seen[0] == 7
    report = verify_path(pieces.directory, keys.verifier)
    assert report.failures == []
