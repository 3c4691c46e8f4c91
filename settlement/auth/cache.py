"""An in-process cache of authenticated API keys: digest -> principal.

Every API request presents its key; looking it up costs a transaction of its own
(three round trips to PostgreSQL). A key's scopes never change, so the only thing a
cached answer can miss is a revocation. The rules:

* only keys found valid are cached, for at most ``ttl`` seconds (10 by default);
  unknown and revoked keys are looked up every time;
* :func:`settlement.auth.service.revoke_key` clears the cache of its own process when
  its transaction commits, so a revocation takes effect at once there;
* other processes (other API workers, a revocation from the CLI) see it when their
  entry expires: within ``ttl`` seconds;
* a lookup that started before a clearing never stores its answer (a generation
  counter), so a read that raced a revocation cannot bring the key back.

Entries are per database (the engine's URL), as tests run many databases in one
process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settlement.auth.service import Principal

#: How long a key stays trusted without looking at the database again.
DEFAULT_TTL_SECONDS = 10.0
#: Distinct keys kept at most; past that the cache starts over (keys are few).
MAX_ENTRIES = 10_000


class KeyCache:
    """Thread-safe ``(database, digest) -> Principal`` with a time to live."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS,  # float-ok: seconds
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[Principal, float]] = {}
        self._generation = 0

    def get(self, database: str, digest: str) -> Principal | None:
        found = self._entries.get((database, digest))
        if found is None:
            return None
        principal, expires = found
        if expires <= self._clock():
            with self._lock:
                self._entries.pop((database, digest), None)
            return None
        return principal

    def generation(self) -> int:
        """Read before a database lookup and hand to :meth:`put`."""
        return self._generation

    def put(self, database: str, digest: str, principal: Principal, generation: int) -> None:
        """Remember ``principal`` unless the cache was cleared since ``generation``."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[(database, digest)] = (principal, self._clock() + self.ttl)

    def clear(self) -> None:
        """Forget every key, and refuse answers of lookups already under way."""
        with self._lock:
            self._generation += 1
            self._entries.clear()


#: The process's cache, used by the API's guard.
keys = KeyCache()
