"""Reconciliation: settlement files and bank statements matched against what the
ledger expects, settlement entries booked, and the exceptions queue finance works
through (DESIGN.md section 8).

* :mod:`.expectations`: :func:`~.expectations.expect`, called at each capture,
  refund and payout;
* :mod:`.service`: files, runs (load, match, book), statements, exceptions, reports;
* :mod:`.runner`: executes a run step by step, one transaction per chunk, resumable;
* :mod:`.tasks`: the Celery tasks and the daily inbox pickup.
"""
