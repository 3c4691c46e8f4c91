"""Card numbers never leave the adapter or the simulator unmasked: not in results,
errors, reprs, log lines, the simulator's memory or the register."""

from __future__ import annotations

import io
import logging

import pytest

from adapters.base import CaptureRequest, Declined, QueryRequest, RefundRequest, Unsupported
from adapters.mir import MirRail, MirSimulator
from adapters.mir.terms import moscow_now
from adapters.testing import new_reference

from .conftest import RUB, authorize_request
from .test_client import card

APPROVED, DECLINED, FOREIGN = "2200000000000004", "2204000000000059", "4111111111111111"


def test_no_full_card_number_anywhere(sim: MirSimulator, rail: MirRail, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    auth = rail.authorize(authorize_request(card(APPROVED), 300_00))
    capture = rail.capture(CaptureRequest(reference=new_reference("cap"), rail_reference=auth.rail_reference,
                                          amount=300_00, currency=RUB))
    refund = rail.refund(RefundRequest(reference=new_reference("ref"), rail_reference=auth.rail_reference,
                                       amount=100_00, currency=RUB))
    query = rail.query(QueryRequest(reference=auth.reference))
    for result in (auth, capture, refund, query):
        seen += [repr(result), *result.raw.values()]
    for pan, error in ((DECLINED, Declined), (FOREIGN, Unsupported), ("2200000000000005", Declined)):
        with pytest.raises(error) as caught:
            rail.authorize(authorize_request(card(pan), 10_00))
        seen += [str(caught.value), repr(caught.value), *caught.value.detail.values()]
    seen += [repr(rail), repr(sim), repr(sim.approving_method()), repr(vars(sim.scheme))]
    register = io.BytesIO()
    sim.write_settlement_file(register, moscow_now().date())
    seen.append(register.getvalue().decode())
    seen.append(caplog.text)

    assert "220000******0004" in register.getvalue().decode(), "the register shows the masked card"
    assert any("220000******0004" in line for line in caplog.messages), "the log shows the masked card"
    everything = "\n".join(seen)
    for pan in (APPROVED, DECLINED, FOREIGN, "2200000000000005"):
        assert pan not in everything
