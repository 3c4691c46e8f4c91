"""Discovery of payment rails through the ``settlement.rails`` entry-point group.

A rail package declares, in its own ``pyproject.toml``::

    [project.entry-points."settlement.rails"]
    myrail = "myrail_package:plugin"

where ``plugin`` is an object satisfying :class:`adapters.base.RailPlugin`. The three
rails shipped here register themselves the same way, so the service never imports a
rail by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from adapters.base import RailError, RailPlugin

GROUP = "settlement.rails"


class UnknownRail(RailError):
    """No installed plugin has this name."""

    code = "rail_unknown"


class RailRegistry:
    """Name -> plugin, loaded lazily from entry points, with explicit additions.

    Entry points are read once per registry; a plugin module is imported only when
    its rail is first asked for.
    """

    def __init__(self, entries: Iterable[EntryPoint] | None = None) -> None:
        found = entries if entries is not None else entry_points(group=GROUP)
        self._entry_points: dict[str, EntryPoint] = {ep.name: ep for ep in found}
        self._loaded: dict[str, RailPlugin] = {}

    def names(self) -> list[str]:
        return sorted(set(self._entry_points) | set(self._loaded))

    def register(self, plugin: RailPlugin) -> None:
        """Add (or replace) a plugin at run time, without an entry point."""
        self._loaded[plugin.name] = plugin

    def get(self, name: str) -> RailPlugin:
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_points.get(name)
        if ep is None:
            installed = ", ".join(self.names()) or "none"
            raise UnknownRail(f"no payment rail named {name!r}; installed: {installed}", rail=name)
        plugin = ep.load()
        if not isinstance(plugin, RailPlugin):
            raise UnknownRail(f"entry point {ep.value!r} for rail {name!r} is not a RailPlugin", rail=name)
        if plugin.name != name:
            raise UnknownRail(f"entry point {name!r} loads a plugin that calls itself {plugin.name!r}",
                              rail=name)
        self._loaded[name] = plugin
        return plugin


_default: RailRegistry | None = None


def default_registry() -> RailRegistry:
    """The process-wide registry of installed rails (built on first use)."""
    global _default  # noqa: PLW0603 - one lazily built, read-only view of installed packages
    if _default is None:
        _default = RailRegistry()
    return _default


def get_rail_plugin(name: str) -> RailPlugin:
    return default_registry().get(name)
