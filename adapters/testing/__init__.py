"""Conformance suite every rail adapter must pass against its own simulator.

Each check is a plain function taking a :class:`~adapters.base.RailPlugin`; it starts
the plugin's simulator on a loopback port, talks to it through the plugin's adapter
over the real socket, and raises :class:`AssertionError` naming what broke. A test
suite runs them with::

    @pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda c: c.__name__)
    def test_conformance(check):
        check(my_plugin)

What the suite relies on beyond the SPI:

* ``create_simulator(signing="wrong-key")``: the simulator signs (or MACs) answers
  and notifications with a key the adapter's configuration does not trust, and still
  carries out what it is asked, so every answer must fail verification;
* ``RailSimulator.notification_for`` (raising :class:`~adapters.base.Unsupported`
  for rails without notifications);
* the approving method approves the ordinary amounts the checks use (whole units,
  and 12.34, 250.50, 999.99), and settlement files written after each check's
  payments hold exactly what that check's simulator processed.

Modules: :mod:`.support` (running a simulator, references, payments, files),
:mod:`.payments`, :mod:`.security` and :mod:`.files` (the checks).
"""

from __future__ import annotations

from collections.abc import Callable

from adapters.base import RailPlugin
from adapters.testing.files import (
    check_discrepancies,
    check_file_round_trip,
    check_malformed_files,
    check_seeded_discrepancies,
)
from adapters.testing.payments import (
    check_decline_code,
    check_idempotent_retry,
    check_partial_capture,
    check_query_not_found,
    check_refund_limits,
    check_round_trip,
    check_spi_shape,
    check_void,
)
from adapters.testing.security import check_notifications, check_signature_failure
from adapters.testing.support import new_reference, running

CONFORMANCE_CHECKS: list[Callable[[RailPlugin], None]] = [
    check_spi_shape,
    check_round_trip,
    check_void,
    check_partial_capture,
    check_decline_code,
    check_query_not_found,
    check_idempotent_retry,
    check_refund_limits,
    check_signature_failure,
    check_notifications,
    check_file_round_trip,
    check_malformed_files,
    check_discrepancies,
    check_seeded_discrepancies,
]


def run_conformance(plugin: RailPlugin) -> None:
    """Run every check; the first failure raises AssertionError."""
    for check in CONFORMANCE_CHECKS:
        check(plugin)


__all__ = [
    "CONFORMANCE_CHECKS",
    "check_decline_code",
    "check_discrepancies",
    "check_file_round_trip",
    "check_idempotent_retry",
    "check_malformed_files",
    "check_notifications",
    "check_partial_capture",
    "check_query_not_found",
    "check_refund_limits",
    "check_round_trip",
    "check_seeded_discrepancies",
    "check_signature_failure",
    "check_spi_shape",
    "check_void",
    "new_reference",
    "run_conformance",
    "running",
]
