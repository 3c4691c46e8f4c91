"""The shared rail conformance suite, run against the UnionPay simulator over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapters.base import RailPlugin
from adapters.registry import RailRegistry
from adapters.testing import CONFORMANCE_CHECKS
from adapters.unionpay import plugin


@pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda check: check.__name__)
def test_conformance(check: Callable[[RailPlugin], None]) -> None:
    check(plugin)


def test_plugin_is_found_through_its_entry_point() -> None:
    assert RailRegistry().get("unionpay") is plugin
