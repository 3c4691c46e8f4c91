"""The reconciliation service: every operation takes a ``Session`` and never commits.

* :mod:`.files`: the file registry (SHA-256), stored bytes, error items;
* :mod:`.loading`: parsed lines into the items tables, chunk by chunk (COPY on
  PostgreSQL, prepared inserts on SQLite);
* :mod:`.runs`: runs and their steps, summaries;
* :mod:`.matching` and :mod:`.statements`: the matching rules (set-based SQL, the same
  statements on both databases);
* :mod:`.sql`: the few fragments PostgreSQL and SQLite say differently;
* :mod:`.booking`: the settlement entries;
* :mod:`.queue`, :mod:`.resolve` and :mod:`.pairing`: the exceptions queue;
* :mod:`.reports`: results, CSV and HTML.

Multi-transaction work (loading, a whole run) is driven by
:mod:`settlement.reconciliation.runner`.
"""
