"""Rail discovery through real entry points, and a third-party rail that passes
every conformance check.

The fourth rail (``tests/adapters/fourth_rail``) is installed for each test the way
pip would leave it: a ``fourth_rail-0.0.0.dist-info`` directory with ``METADATA``
and ``entry_points.txt`` on ``sys.path``. :class:`RailRegistry` then finds it
through ``importlib.metadata.entry_points`` like any installed package. The same
way installs the broken cases: entry points whose import fails, two distributions
declaring one rail name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import tests.adapters.fourth_rail as fourth_rail
from adapters.base import RailPlugin
from adapters.registry import GROUP, DuplicateRail, RailLoadFailed, RailRegistry, UnknownRail
from adapters.testing import CONFORMANCE_CHECKS
from tests.adapters.fourth_rail import FourthRailPlugin


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


def test_an_entry_point_that_fails_to_import_names_itself(site: Path) -> None:
    install(site, "broken-import-rail", {"ghost": "tests.adapters.fourth_rail.no_such_module:plugin",
                                         "typo": "tests.adapters.fourth_rail:plugni"})
    registry = RailRegistry()
    with pytest.raises(RailLoadFailed, match=r"entry point ghost = 'tests\.adapters\.fourth_rail\.no_such_module:"
                                             r"plugin' \(from broken-import-rail\)") as raised:
        registry.get("ghost")
    assert (raised.value.code, raised.value.rail) == ("rail_load_failed", "ghost")
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)
    assert isinstance(raised.value, UnknownRail), "callers that refuse unknown rails refuse this one too"
    with pytest.raises(RailLoadFailed, match=r"typo = 'tests\.adapters\.fourth_rail:plugni'.*AttributeError"):
        registry.get("typo")
    assert "ghost" in registry.names(), "a broken rail is still listed, so the failure can be found"


def test_two_distributions_declaring_one_rail_are_refused_naming_both(site: Path) -> None:
    install(site, "fourth-rail", {"fourth": "tests.adapters.fourth_rail:plugin"})
    install(site, "fourth-rail-fork", {"fourth": "tests.adapters.fourth_rail.simulator:FourthSimulator"})
    registry = RailRegistry()
    assert "fourth" in registry.names()
    with pytest.raises(DuplicateRail, match="rail 'fourth' is declared by more than one distribution") as raised:
        registry.get("fourth")
    assert raised.value.code == "rail_duplicate"
    assert "fourth-rail (tests.adapters.fourth_rail:plugin)" in raised.value.message
    assert "fourth-rail-fork (tests.adapters.fourth_rail.simulator:FourthSimulator)" in raised.value.message
    assert set(raised.value.detail["distributions"].split(",")) == {"fourth-rail", "fourth-rail-fork"}
    # Still refused on a second ask: which one runs must not depend on sys.path order.
    with pytest.raises(DuplicateRail):
        registry.get("fourth")


def test_one_distribution_seen_twice_is_not_a_conflict(site: Path) -> None:
    install(site, "fourth-rail", {"fourth": "tests.adapters.fourth_rail:plugin"})
    [entry] = [ep for ep in entry_points(group=GROUP) if ep.name == "fourth"]
    assert RailRegistry(entries=[entry, entry]).get("fourth") is fourth_rail.plugin


def test_register_never_silently_replaces_a_rail(registry: RailRegistry) -> None:
    impostor = FourthRailPlugin()
    with pytest.raises(DuplicateRail, match=r"rail 'fourth' is already provided by entry point .*replace=True"):
        registry.register(impostor)
    assert registry.get("fourth") is fourth_rail.plugin, "a refused registration changed nothing"
    with pytest.raises(DuplicateRail, match="already provided by plugin FourthRailPlugin"):
        registry.register(impostor)
    registry.register(impostor, replace=True)
    assert registry.get("fourth") is impostor
    fresh = RailRegistry(entries=[])
    fresh.register(impostor)
    with pytest.raises(DuplicateRail):
        fresh.register(fourth_rail.plugin)
    assert fresh.get("fourth") is impostor
