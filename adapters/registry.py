"""Discovery of payment rails through the ``settlement.rails`` entry-point group.

A rail package declares, in its own ``pyproject.toml``::

    [project.entry-points."settlement.rails"]
    myrail = "myrail_package:plugin"

where ``plugin`` is an object satisfying :class:`adapters.base.RailPlugin`. The three
rails shipped here register themselves the same way, so the service never imports a
rail by name.

Refusals, each a subclass of :class:`UnknownRail` (so a caller that maps "no such
rail" to an error keeps working) with its own ``code``:

* :class:`UnknownRail`: no installed plugin has the name, or the entry point loads
  something that is not a plugin of that name;
* :class:`RailLoadFailed`: importing the entry point's target raised (a missing
  module, a broken import...); the message names the entry point and distribution;
* :class:`DuplicateRail`: two distributions declare the same rail name (neither is
  loaded: which one the service talks to must not depend on ``sys.path`` order), or
  :meth:`RailRegistry.register` would replace a rail without ``replace=True``.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points

from adapters.base import RailError, RailPlugin

GROUP = "settlement.rails"


class UnknownRail(RailError):
    """No installed plugin has this name."""

    code = "rail_unknown"


class RailLoadFailed(UnknownRail):
    """The entry point for this rail could not be loaded (its import raised)."""

    code = "rail_load_failed"


class DuplicateRail(UnknownRail):
    """Two plugins claim the same rail name."""

    code = "rail_duplicate"


def _origin(ep: EntryPoint) -> str:
    """Who declared ``ep``: its distribution's name, or its target when it has none."""
    return ep.dist.name if ep.dist is not None else ep.value


class RailRegistry:
    """Name -> plugin, loaded lazily from entry points, with explicit additions.

    Entry points are read once per registry; a plugin module is imported only when
    its rail is first asked for.
    """

    def __init__(self, entries: Iterable[EntryPoint] | None = None) -> None:
        found = entries if entries is not None else entry_points(group=GROUP)
        declared: dict[str, list[EntryPoint]] = {}
        for ep in found:
            seen = declared.setdefault(ep.name, [])
            # The same distribution (or target) met twice is one declaration.
            if all((_origin(d), d.value) != (_origin(ep), ep.value) for d in seen):
                seen.append(ep)
        self._entry_points: dict[str, EntryPoint] = {name: eps[0] for name, eps in declared.items()}
        #: name -> its declarations, for names more than one distribution declares.
        self._conflicts = {name: eps for name, eps in declared.items() if len(eps) > 1}
        self._loaded: dict[str, RailPlugin] = {}

    def names(self) -> list[str]:
        return sorted(set(self._entry_points) | set(self._loaded))

    def register(self, plugin: RailPlugin, *, replace: bool = False) -> None:
        """Add a plugin at run time, without an entry point. A name already known
        (registered, loaded or declared by an entry point) raises
        :class:`DuplicateRail` unless ``replace`` is true, which then makes ``plugin``
        the one :meth:`get` answers."""
        name = plugin.name
        if not replace and (name in self._loaded or name in self._entry_points):
            existing = self._loaded.get(name)
            what = (f"plugin {type(existing).__qualname__}" if existing is not None
                    else f"entry point {self._entry_points[name].value!r}")
            raise DuplicateRail(f"rail {name!r} is already provided by {what}; "
                                "register(..., replace=True) to replace it", rail=name)
        self._loaded[name] = plugin

    def get(self, name: str) -> RailPlugin:
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_points.get(name)
        if ep is None:
            installed = ", ".join(self.names()) or "none"
            raise UnknownRail(f"no payment rail named {name!r}; installed: {installed}", rail=name)
        if name in self._conflicts:
            declared = " and ".join(f"{_origin(d)} ({d.value})" for d in self._conflicts[name])
            raise DuplicateRail(f"rail {name!r} is declared by more than one distribution: {declared}; "
                                "uninstall all but one", rail=name,
                                detail={"distributions": ",".join(_origin(d) for d in self._conflicts[name])})
        try:
            plugin = ep.load()
        except Exception as exc:  # any import failure means this rail cannot be used
            raise RailLoadFailed(f"entry point {name} = {ep.value!r} (from {_origin(ep)}) for rail {name!r} "
                                 f"failed to load: {type(exc).__name__}: {exc}", rail=name,
                                 detail={"entry_point": f"{name} = {ep.value}"}) from exc
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
