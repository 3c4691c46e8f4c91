"""Posting from four threads while two sealers run in two more: every entry is sealed
exactly once, sequence numbers are gapless, and the journal follows (tx_id, id)."""

from __future__ import annotations

import threading

from sqlalchemy import text

from settlement.db import unit_of_work
from settlement.journal.jobs import seal_pending
from settlement.ledger import Ledger
from tests.conftest import Database
from tests.journal.factories import open_book, seal_all, transfer
from tests.journal.test_sealing import check_journal

POSTERS = 4
PER_POSTER = 120


def test_two_sealers_while_posting_seal_every_entry_once_gapless(pg_database: Database) -> None:
    factory = pg_database.factory
    open_book(factory)
    stop = threading.Event()
    errors: list[BaseException] = []
    sealed_while_posting = [0, 0]

    def poster(worker: int) -> None:
        try:
            for n in range(0, PER_POSTER, 6):
                with unit_of_work(factory) as session:
                    ledger = Ledger(session)
                    # Single entries and batches, each thread on its own wallet pair.
                    ledger.post(transfer(f"p{worker}:{n}", "bank:RUB", f"wallet:{worker % 3}:RUB", 100 + n))
                    ledger.post_batch([transfer(f"p{worker}:{n}:{k}", "bank:CNY", f"wallet:{worker % 3}:CNY", 10 + k,
                                                "CNY") for k in range(5)])
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    def sealer(index: int) -> None:
        try:
            while not stop.is_set():
                sealed_while_posting[index] += seal_pending(factory, batch=7).sealed
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)

    sealers = [threading.Thread(target=sealer, args=(i,)) for i in range(2)]
    posters = [threading.Thread(target=poster, args=(w,)) for w in range(POSTERS)]
    for thread in sealers + posters:
        thread.start()
    for thread in posters:
        thread.join()
    stop.set()
    for thread in sealers:
        thread.join()
    assert errors == []
    assert sum(sealed_while_posting) > 0
    total = POSTERS * PER_POSTER
    assert seal_all(factory) == total
    rows = check_journal(pg_database)
    assert len(rows) == total
    with factory() as session:
        order = session.execute(text(
            "SELECT e.tx_id, e.id FROM journal_leaves l JOIN ledger_entries e ON e.id = l.entry_id ORDER BY l.seq"
        )).all()
    assert [tuple(r) for r in order] == sorted(tuple(r) for r in order)
