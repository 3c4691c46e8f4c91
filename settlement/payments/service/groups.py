"""Outcomes of concurrent requests recorded in one transaction (group commit).

Every sale's ledger entries post to accounts all sales share: the rail's receivable,
clearing, commission. Recorded one transaction per sale, each sale holds those rows
from its ledger call to its commit, and under load the sales queue on them (in
``bench/floor.py``, 32 clients: 4.1 ms of PostgreSQL CPU and at most about 270 sales/s,
against 1.5 ms and 740/s when 8 outcomes share a transaction).

A :class:`Grouper` lets the outcomes waiting at one moment share a transaction. The
first request to arrive when no group is being written leads: it takes every outcome
waiting (itself included, at most ``size``), runs each one's step 3 in turn as it
would run alone (the outcome applied, the request's answer stored), and commits once,
their ledger batches sent together with the COMMIT. Then it hands the lead to the
first request that arrived meanwhile, if any, and returns. Each request's changes are
still all or nothing; a group is all or nothing too. A group that fails for any reason
(a ledger refusal, a batch the ledger sends to its general path, a deadlock) commits
nothing, and each of its requests records its outcome again alone
(:class:`GroupNotCommitted`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from settlement.db import SessionFactory
from settlement.errors import SettlementError
from settlement.payments.models import Payment, PaymentAttempt
from settlement.payments.service import apply

Recorded = tuple[Payment, PaymentAttempt, SettlementError | None]


class GroupNotCommitted(Exception):
    """The group this outcome was in committed nothing: record it alone."""


@dataclass(eq=False)
class Member:
    """One request's step 3, waiting to be recorded."""

    step: Callable[[Session], Recorded]
    recorded: Recorded | None = None
    failed: bool = False
    lead: bool = False
    woken: threading.Event = field(default_factory=threading.Event)


class Grouper:
    """Groups the outcomes recorded through one session factory."""

    def __init__(self, factory: SessionFactory, size: int) -> None:
        self.factory, self.size = factory, size
        self._lock = threading.Lock()
        self._waiting: list[Member] = []
        self._writing = False
        #: Groups committed and rolled back, and the most outcomes one committed.
        self.committed = self.failed = self.largest = 0

    def record(self, step: Callable[[Session], Recorded]) -> Recorded:
        """Run ``step`` (a request's step 3) in a transaction with whatever else is
        waiting; raises :class:`GroupNotCommitted` when its group committed nothing."""
        member = Member(step)
        with self._lock:
            self._waiting.append(member)
            if not self._writing:
                self._writing = member.lead = True
        if not member.lead:
            member.woken.wait()
        if member.lead:
            self._lead()
        if member.failed or member.recorded is None:
            raise GroupNotCommitted("the group's transaction committed nothing")
        return member.recorded

    def _lead(self) -> None:
        with self._lock:
            group, self._waiting = self._waiting[:self.size], self._waiting[self.size:]
        try:
            self._write(group)
        finally:
            for member in group:
                member.woken.set()
            with self._lock:
                if self._waiting:
                    following = self._waiting[0]
                    following.lead = True
                    following.woken.set()
                else:
                    self._writing = False

    def _write(self, group: list[Member]) -> None:
        session = self.factory()
        try:
            apply.commit_with_ledger(session)
            apply.group_last_batches(session)
            recorded = [member.step(session) for member in group]
            session.commit()
        except Exception:  # noqa: BLE001 - each request records alone and meets the error itself
            self._rolled_back(session, group)
            return
        except BaseException:
            self._rolled_back(session, group)
            raise
        finally:
            session.close()
        for member, outcome in zip(group, recorded, strict=True):
            member.recorded = outcome
        with self._lock:
            self.committed += 1
            self.largest = max(self.largest, len(group))

    def _rolled_back(self, session: Session, group: list[Member]) -> None:
        for member in group:
            member.failed = True
        with self._lock:
            self.failed += 1
        session.rollback()


_groupers: weakref.WeakKeyDictionary[SessionFactory, Grouper] = weakref.WeakKeyDictionary()
_groupers_lock = threading.Lock()


def grouper(factory: SessionFactory, size: int) -> Grouper:
    """The process's grouper for ``factory`` (one per factory: a group shares one
    transaction, so one database)."""
    with _groupers_lock:
        found = _groupers.get(factory)
        if found is None or found.size != size:
            found = _groupers[factory] = Grouper(factory, size)
        return found
