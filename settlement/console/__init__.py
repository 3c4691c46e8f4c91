"""The finance staff's web console: server-rendered pages (Jinja2, a few lines of
script, no build step) in the same process as the API, mounted at ``/console``.

* :mod:`.service`: sessions (an API key exchanged for a server-side session);
* :mod:`.routes`: the pages: runs, a run's detail, the exceptions queue and its
  actions, ledger accounts, exports;
* :mod:`.queries`: what the pages read that the domain services do not list;
* :mod:`.app`: the console application the API app mounts.

Finance keys work the exceptions queue; auditor keys see everything and change
nothing; checkout keys cannot sign in.
"""

from settlement.console.app import create_console

__all__ = ["create_console"]
