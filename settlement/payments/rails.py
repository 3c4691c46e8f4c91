"""Rail clients built from configuration, through ``adapters.registry`` only.

The configuration is a JSON file named by ``SETTLEMENT_RAILS_CONFIG_FILE``::

    {"mir": {"host": "127.0.0.1", "port": "9100", "mac_key": "..."},
     "unionpay": {...}, "alipay": {...}}

each rail's object holding the string keys its plugin documents. A client is built
the first time it is needed and kept for the life of the process (clients are
thread-safe and hold their own keys and connection pools).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path

from adapters.base import PaymentRail
from adapters.registry import RailRegistry, UnknownRail, default_registry
from settlement.config import Settings
from settlement.payments.errors import RailNotConfigured, RailUnknownRail


class Rails:
    """Name -> configured :class:`PaymentRail`."""

    def __init__(self, config: Mapping[str, Mapping[str, str]], *, registry: RailRegistry | None = None,
                 public_base_url: str = "") -> None:
        self._config = {name: dict(values) for name, values in config.items()}
        self._registry = registry
        self._base = public_base_url.rstrip("/")
        self._built: dict[str, PaymentRail] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        return sorted(self._config)

    def get(self, name: str) -> PaymentRail:
        """The client of rail ``name``; refuses a rail that is not configured."""
        rail = self._built.get(name)
        if rail is not None:
            return rail
        with self._lock:
            rail = self._built.get(name)
            if rail is None:
                rail = self._build(name)
                self._built[name] = rail
        return rail

    def _build(self, name: str) -> PaymentRail:
        config = self._config.get(name)
        if config is None:
            raise RailNotConfigured(f"rail {name!r} is not configured; configured: {', '.join(self.names()) or 'none'}",
                                    rail=name)
        if self._base and not config.get("notify_url"):
            config = {**config, "notify_url": f"{self._base}/v1/notifications/{name}"}
        registry = self._registry or default_registry()
        try:
            plugin = registry.get(name)
        except UnknownRail as exc:
            raise RailUnknownRail(exc.message, rail=name) from None
        return plugin.create_rail(config)

    def close(self) -> None:
        with self._lock:
            for rail in self._built.values():
                close = getattr(rail, "close", None)
                if callable(close):
                    close()
            self._built.clear()


def load_config(path: Path | None) -> dict[str, dict[str, str]]:
    """Read a rails configuration file; no file means no rails."""
    if path is None:
        return {}
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not all(
            isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) for v in document.values()):
        raise ValueError(f"{path}: rails configuration must be {{rail: {{key: string}}}}")
    return document


def rails_from_settings(settings: Settings) -> Rails:
    return Rails(load_config(settings.rails_config_file), public_base_url=settings.public_base_url)


_process_rails: Rails | None = None
_process_lock = threading.Lock()


def use_rails(rails: Rails | None) -> None:
    """Make tasks in this process use ``rails`` (the API shares its own); None resets."""
    global _process_rails  # noqa: PLW0603 - one set of rail clients per process
    with _process_lock:
        _process_rails = rails


def process_rails() -> Rails:
    """The process's rails: those given to :func:`use_rails`, else from the settings."""
    global _process_rails  # noqa: PLW0603 - built once per worker process
    with _process_lock:
        if _process_rails is None:
            from settlement.config import get_settings

            _process_rails = rails_from_settings(get_settings())
        return _process_rails
