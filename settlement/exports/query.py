"""The SQL of an export. Every read of one export runs in one REPEATABLE READ
transaction (PostgreSQL), so the journal, the trial balance and the statements
describe the same instant; the big reads use server-side cursors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from settlement.db.types import UTCDateTime
from settlement.journal import reader

_TIME = UTCDateTime()


class ExportQueries:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def _t(self, value: dt.datetime) -> Any:
        return _TIME.process_bind_param(value, self.session.get_bind().dialect)

    def snapshot(self) -> None:
        """Pin one snapshot for every read that follows (call first)."""
        if self.dialect == "postgresql":
            self.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        reader.tune(self.session)

    def period_range(self, tree_size: int, period_from: dt.datetime | None,
                     period_to: dt.datetime | None) -> tuple[int, int]:
        """The smallest run of sequence numbers [a, b] (within the checkpoint) that
        holds every sealed entry recorded in [from, to); (n + 1, n) when none is."""
        empty = (tree_size + 1, tree_size)
        first = 1
        last = tree_size
        if period_from is not None:
            found = self.session.execute(text(
                "SELECT MIN(l.seq) FROM journal_leaves l JOIN ledger_entries e ON e.id = l.entry_id "
                "WHERE e.recorded_at >= :t AND l.seq <= :n"), {"t": self._t(period_from), "n": tree_size}).scalar()
            if found is None:
                return empty
            first = int(found)
        if period_to is not None:
            found = self.session.execute(text(
                "SELECT MAX(l.seq) FROM journal_leaves l JOIN ledger_entries e ON e.id = l.entry_id "
                "WHERE e.recorded_at < :t AND l.seq <= :n"), {"t": self._t(period_to), "n": tree_size}).scalar()
            if found is None:
                return empty
            last = int(found)
        return (first, last) if first <= last else empty

    def unsealed_in_period(self, tree_size: int, period_from: dt.datetime | None,
                           period_to: dt.datetime | None) -> int:
        """Committed entries recorded in [from, to) that the checkpoint does not hold."""
        clauses, params = ["(l.seq IS NULL OR l.seq > :n)"], {"n": tree_size}
        if period_from is not None:
            clauses.append("e.recorded_at >= :f")
            params["f"] = self._t(period_from)
        if period_to is not None:
            clauses.append("e.recorded_at < :t")
            params["t"] = self._t(period_to)
        return int(self.session.execute(text(
            "SELECT COUNT(*) FROM ledger_entries e LEFT JOIN journal_leaves l ON l.entry_id = e.id "
            f"WHERE {' AND '.join(clauses)}"), params).scalar_one())

    def writers_started_before(self, moment: dt.datetime) -> int:
        """Transactions still running that hold a transaction id and began before
        ``moment``: one of them could still commit an entry recorded before it."""
        if self.dialect != "postgresql":
            return 0
        return int(self.session.execute(text(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND xact_start < :t "
            "AND pid <> pg_backend_pid() AND datname = current_database()"), {"t": moment}).scalar_one())

    def accounts(self) -> dict[int, tuple[str, str, str]]:
        """id -> (code, currency, type) of every account."""
        rows = self.session.execute(text("SELECT id, code, currency, type FROM ledger_accounts"))
        return {int(r[0]): (r[1], r[2], r[3]) for r in rows}

    def opening(self, tree_size: int, period_from: dt.datetime | None) -> dict[int, tuple[int, int]]:
        """account id -> (posted debits, posted credits) of sealed entries recorded
        before ``from``."""
        if period_from is None:
            return {}
        rows = self.session.execute(text(
            "SELECT p.account_id, SUM(CASE WHEN p.side = 'D' THEN p.amount ELSE 0 END), "
            "SUM(CASE WHEN p.side = 'C' THEN p.amount ELSE 0 END) FROM journal_leaves l "
            "JOIN ledger_entries e ON e.id = l.entry_id JOIN ledger_postings p ON p.entry_id = e.id "
            "WHERE l.seq <= :n AND e.recorded_at < :f AND NOT p.pending GROUP BY p.account_id"),
            {"n": tree_size, "f": self._t(period_from)})
        return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}

    def movements(self, first: int, last: int, period_from: dt.datetime | None,
                  period_to: dt.datetime | None) -> tuple[dict[int, list[int]], int, int, int]:
        """For sequence numbers first..last: account id -> [posted debits, posted
        credits] recorded in the period; the number of postings and of entries
        without postings (together, the journal's rows); the number of posted
        postings recorded in the period (the statements' posting lines)."""
        in_period, params = "NOT p.pending", {"a": first, "b": last}
        if period_from is not None:
            in_period += " AND e.recorded_at >= :f"
            params["f"] = self._t(period_from)
        if period_to is not None:
            in_period += " AND e.recorded_at < :t"
            params["t"] = self._t(period_to)
        rows = self.session.execute(text(
            f"SELECT p.account_id, COUNT(*), COUNT(*) FILTER (WHERE {in_period}), "
            f"COALESCE(SUM(CASE WHEN p.side = 'D' AND {in_period} THEN p.amount END), 0), "
            f"COALESCE(SUM(CASE WHEN p.side = 'C' AND {in_period} THEN p.amount END), 0) "
            "FROM journal_leaves l JOIN ledger_entries e ON e.id = l.entry_id "
            "LEFT JOIN ledger_postings p ON p.entry_id = l.entry_id "
            "WHERE l.seq >= :a AND l.seq <= :b GROUP BY p.account_id"), params)
        moves: dict[int, list[int]] = {}
        postings = empty = in_period_count = 0
        for row in rows:
            if row[0] is None:
                empty = int(row[1])
                continue
            postings += int(row[1])
            in_period_count += int(row[2])
            if row[3] or row[4]:
                moves[int(row[0])] = [int(row[3]), int(row[4])]
        return moves, postings, empty, in_period_count

    def journal(self, first: int, last: int) -> Iterator[reader.EntryRecord]:
        """Sealed entries first..last with their stored leaf hashes, in sequence order."""
        a, b = reader.bind(self.dialect, "a"), reader.bind(self.dialect, "b")
        sql = (f"SELECT l.seq, l.leaf_hash, NULL, {reader.entry_columns(self.dialect)} FROM journal_leaves l "
               f"JOIN ledger_entries e ON e.id = l.entry_id {reader.POSTING_JOINS} "
               f"WHERE l.seq >= {a} AND l.seq <= {b} ORDER BY l.seq, p.id")
        return reader.stream(self.session, sql, {"a": first, "b": last})

    def statement_lines(self, first: int, last: int, period_from: dt.datetime | None,
                        period_to: dt.datetime | None) -> Iterator[Sequence[Any]]:
        """Posted postings recorded in the period, by account, then sequence, then
        posting id: (account_id, seq, entry_id, posting_id, side, amount, recorded_at,
        description)."""
        def bind(name: str) -> str:
            return reader.bind(self.dialect, name)

        rec = reader.time_column(self.dialect, "e.recorded_at")
        clauses = [f"l.seq >= {bind('a')}", f"l.seq <= {bind('b')}", "NOT p.pending"]
        params: dict[str, Any] = {"a": first, "b": last}
        if period_from is not None:
            clauses.append(f"e.recorded_at >= {bind('f')}")
            params["f"] = self._t(period_from)
        if period_to is not None:
            clauses.append(f"e.recorded_at < {bind('t')}")
            params["t"] = self._t(period_to)
        result = reader.rows(self.session, (
            f"SELECT p.account_id, l.seq, l.entry_id, p.id, p.side, p.amount, {rec}, e.description "
            "FROM journal_leaves l JOIN ledger_postings p ON p.entry_id = l.entry_id "
            f"JOIN ledger_entries e ON e.id = l.entry_id WHERE {' AND '.join(clauses)} "
            "ORDER BY p.account_id, l.seq, p.id"), params)
        if self.dialect == "postgresql":
            yield from result
        else:
            for r in result:
                yield (*r[:6], reader.sqlite_time(r[6]), r[7])
