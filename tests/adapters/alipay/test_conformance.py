"""The shared rail conformance suite, run against the Alipay simulator over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapters.alipay import plugin
from adapters.base import RailPlugin
from adapters.registry import RailRegistry
from adapters.testing import CONFORMANCE_CHECKS


@pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda c: c.__name__)
def test_conformance(check: Callable[[RailPlugin], None]) -> None:
    check(plugin)


def test_registered_under_its_entry_point() -> None:
    assert RailRegistry().get("alipay") is plugin
