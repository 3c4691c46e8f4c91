"""Property-based API testing from the OpenAPI document (schemathesis 4): a bounded
number of generated requests per endpoint, sent with an admin key to the app on
PostgreSQL with the rails' simulators behind it; no answer may be a server error or
break the schema the endpoint documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error, response_schema_conformance

from tests.api.conftest import bearer
from tests.api.payflow import CARDS, merchant, post
from tests.conftest import Database
from tests.payments.fixtures import load_rates

EXAMPLES = 12


def test_openapi_document_holds(app: FastAPI, pay: TestClient, make_key: Callable[..., str],
                                pg_database: Database) -> None:
    admin = bearer(make_key("admin"))
    # Every endpoint configured: the journal's signing key too (generated here, never stored).
    signing = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    app.state.settings.journal_signing_key = SecretStr(signing.decode())
    load_rates(pg_database.factory)
    seller = merchant(pay, admin, "RUB", payout_rail="unionpay", payout_destination="6216261000000000018")
    merchant(pay, admin, "CNY", payout_rail="unionpay", payout_destination="6216261000000000018")
    post(pay, "/v1/payments", {"amount": "10.00", "currency": "RUB", "merchant_id": seller, "rail": "mir",
                               "payment_method": CARDS["mir"], "capture_method": "manual"}, admin)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(headers=admin)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect every endpoint's failure, report them together
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
