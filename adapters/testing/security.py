"""Conformance checks of trust: every answer and notification signed with a key the
adapter does not hold is refused, and notifications parse, verify and acknowledge."""

from __future__ import annotations

from functools import partial

from adapters.base import (
    AuthorizeRequest,
    Capability,
    CaptureRequest,
    QueryOperation,
    QueryRequest,
    RailPlugin,
    RefundRequest,
    SignatureInvalid,
    TxnStatus,
    Unsupported,
    VoidRequest,
)
from adapters.testing.support import (
    authorize,
    captured_payment,
    currency_of,
    expect,
    new_reference,
    running,
    separate_capture,
)


def check_signature_failure(plugin: RailPlugin) -> None:
    """Every kind of answer signed with an untrusted key is refused with
    SignatureInvalid: an authorization's, a query's, and (where the rail offers them)
    a capture's, void's and refund's, even when the answer is a refusal."""
    with running(plugin) as (good_sim, good_rail), running(plugin, signing="wrong-key") as (sim, rail):
        # Real transactions to name, made where answers are trusted.
        held = authorize(good_rail, good_sim, 30_00)[1] if separate_capture(good_rail) else None
        payment = (captured_payment(good_rail, good_sim, 40_00)
                   if Capability.REFUND in good_rail.capabilities else None)
        currency = currency_of(rail)
        sale = not separate_capture(rail)
        request = AuthorizeRequest(reference=new_reference(), amount=10_00, currency=currency,
                                   method=sim.approving_method(), capture=sale)
        expect(SignatureInvalid, lambda: rail.authorize(request), "an authorization answered with the wrong key")
        operation = QueryOperation.SALE if sale else QueryOperation.AUTHORIZE
        for reference in (request.reference, new_reference("none")):
            query = QueryRequest(reference=reference, operation=operation)
            expect(SignatureInvalid, partial(rail.query, query), "a query answered with the wrong key")
        if held is not None:
            expect(SignatureInvalid, lambda: rail.capture(CaptureRequest(
                reference=new_reference("cap"), rail_reference=held.rail_reference, amount=30_00,
                currency=currency)), "a capture answered with the wrong key")
            if Capability.VOID in rail.capabilities:
                expect(SignatureInvalid, lambda: rail.void(VoidRequest(
                    reference=new_reference("void"), rail_reference=held.rail_reference, amount=30_00,
                    currency=currency)), "a void answered with the wrong key")
        if payment is not None:
            expect(SignatureInvalid, lambda: rail.refund(RefundRequest(
                reference=new_reference("ref"), rail_reference=payment.rail_reference, amount=40_00,
                currency=currency)), "a refund answered with the wrong key")


def _altered(reference: str) -> str:
    """``reference`` with its last character changed (same length, same alphabet)."""
    return reference[:-1] + ("1" if reference[-1] == "0" else "0")


def check_notifications(plugin: RailPlugin) -> None:
    """A simulator's notification about an operation parses to that operation's
    reference, status and amount; asked for again it carries the same notification id,
    another event gets another id; a changed body or a notification signed with another
    key is SignatureInvalid; the acknowledgement of an accepted notification differs
    from a refusal's. Rails without notifications: the simulator says Unsupported."""
    with running(plugin) as (sim, rail):
        if Capability.NOTIFICATIONS not in rail.capabilities:
            expect(Unsupported, lambda: sim.notification_for(new_reference()), "a notification from a rail "
                   "without notifications")
            return
        separate = separate_capture(rail)
        req, result = authorize(rail, sim, 77_00, capture=not separate)
        headers, body = sim.notification_for(req.reference)
        notification = rail.parse_notification(headers, body)
        assert notification.rail == plugin.name
        assert (notification.reference, notification.rail_reference) == (req.reference, result.rail_reference), (
            f"notification names {notification.reference}/{notification.rail_reference}")
        assert (notification.status, notification.amount, notification.currency) == (
            result.status, 77_00, req.currency), f"notification says {notification}"
        assert notification.notification_id, "a notification needs an id to be deduplicated by"
        resent = rail.parse_notification(*sim.notification_for(req.reference))
        assert resent.notification_id == notification.notification_id, "a re-sent notification changed its id"

        tampered = body.replace(req.reference.encode(), _altered(req.reference).encode())
        assert tampered != body, "the notification body does not carry the reference"
        expect(SignatureInvalid, lambda: rail.parse_notification(headers, tampered), "a tampered notification")

        ack, refusal = rail.notification_ack(notification), rail.notification_ack(None)
        assert ack.status_code == 200, f"the acknowledgement {ack} would not stop the rail's retries"
        assert ack.body, f"the acknowledgement {ack} has no body"
        assert (refusal.status_code, refusal.body) != (ack.status_code, ack.body), "a refusal reads as an ack"

        if Capability.REFUND in rail.capabilities:
            payment = captured_payment(rail, sim, 60_00)
            refund_ref = new_reference("ref")
            rail.refund(RefundRequest(reference=refund_ref, rail_reference=payment.rail_reference, amount=60_00,
                                      currency=payment.currency))
            refunded = rail.parse_notification(*sim.notification_for(refund_ref))
            assert (refunded.reference, refunded.status, refunded.amount) == (
                refund_ref, TxnStatus.REFUNDED, 60_00), f"refund notification says {refunded}"
            assert refunded.notification_id != notification.notification_id

    with running(plugin, signing="wrong-key") as (sim, rail):
        request = AuthorizeRequest(reference=new_reference(), amount=12_00, currency=currency_of(rail),
                                   method=sim.approving_method(), capture=not separate_capture(rail))
        # The simulator carries the payment out; only its answer is untrusted.
        expect(SignatureInvalid, lambda: rail.authorize(request), "an answer signed with the wrong key")
        headers, body = sim.notification_for(request.reference)
        expect(SignatureInvalid, lambda: rail.parse_notification(headers, body),
               "a notification signed with the wrong key")
