"""Rail discovery through real entry points, and a third-party rail that passes
every conformance check.

The fourth rail (``tests/adapters/fourth_rail``) is installed for each test the way
pip would leave it: a ``fourth_rail-0.0.0.dist-info`` directory with ``METADATA``
and ``entry_points.txt`` on ``sys.path``. :class:`RailRegistry` then finds it
through ``importlib.metadata.entry_points`` like any installed package.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import tests.adapters.fourth_rail as fourth_rail
from adapters.base import RailPlugin
from adapters.registry import GROUP, RailRegistry, UnknownRail
from adapters.testing import CONFORMANCE_CHECKS


def install(site: Path, distribution: str, entries: dict[str, str]) -> None:
    """Leave ``distribution`` in ``site`` as an installed package declaring ``entries``."""
    info = site / f"{distribution.replace('-', '_')}-0.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.0.0\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh site directory on ``sys.path`` (removed again after the test)."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.fixture
def registry(site: Path) -> RailRegistry:
    install(site, "fourth-rail", {"fourth": "tests.adapters.fourth_rail:plugin"})
    return RailRegistry()


def test_without_its_dist_info_the_fourth_rail_is_not_installed() -> None:
    assert "fourth" not in {ep.name for ep in entry_points(group=GROUP)}


def test_registry_finds_the_rail_by_its_entry_point(registry: RailRegistry) -> None:
    [declared] = [ep for ep in entry_points(group=GROUP) if ep.name == "fourth"]
    assert declared.dist is not None
    assert declared.dist.name == "fourth-rail"
    assert "fourth" in registry.names()
    plugin = registry.get("fourth")
    assert plugin is fourth_rail.plugin
    assert isinstance(plugin, RailPlugin)
    assert registry.get("fourth") is plugin, "a plugin is loaded once per registry"


@pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda check: check.__name__)
def test_conformance(registry: RailRegistry, check: Callable[[RailPlugin], None]) -> None:
    check(registry.get("fourth"))


def test_unknown_rail_names_what_is_installed(registry: RailRegistry) -> None:
    with pytest.raises(UnknownRail, match="no payment rail named 'fifth'") as raised:
        registry.get("fifth")
    assert "fourth" in raised.value.message
    assert (raised.value.code, raised.value.rail) == ("rail_unknown", "fifth")


def test_entry_point_that_loads_a_non_plugin(site: Path) -> None:
    install(site, "broken-rail", {"broken": "tests.adapters.fourth_rail:NOT_A_PLUGIN",
                                  "modular": "tests.adapters.fourth_rail.protocol:CURRENCY"})
    registry = RailRegistry()
    for name in ("broken", "modular"):
        with pytest.raises(UnknownRail, match="is not a RailPlugin"):
            registry.get(name)


def test_entry_point_name_must_match_the_plugin_name(site: Path) -> None:
    install(site, "impostor-rail", {"mir-fast": "tests.adapters.fourth_rail:plugin"})
    with pytest.raises(UnknownRail, match="calls itself 'fourth'"):
        RailRegistry().get("mir-fast")


def test_explicit_entries_and_runtime_registration(site: Path) -> None:
    install(site, "fourth-rail", {"fourth": "tests.adapters.fourth_rail:plugin"})
    [entry] = [ep for ep in entry_points(group=GROUP) if ep.name == "fourth"]
    only_fourth = RailRegistry(entries=[entry])
    assert only_fourth.names() == ["fourth"]
    empty = RailRegistry(entries=[])
    with pytest.raises(UnknownRail, match="installed: none"):
        empty.get("fourth")
    empty.register(fourth_rail.plugin)
    assert empty.get("fourth") is fourth_rail.plugin
