"""The SPI conformance suite, run against the Mir plugin and its simulator."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from adapters.base import RailPlugin
from adapters.mir import plugin
from adapters.registry import RailRegistry
from adapters.testing import CONFORMANCE_CHECKS


@pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda c: c.__name__)
def test_conformance(check: Callable[[RailPlugin], None]) -> None:
    check(plugin)


def test_plugin_is_found_through_its_entry_point() -> None:
    assert RailRegistry().get("mir") is plugin
