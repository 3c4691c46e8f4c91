"""``settlement payments``: run the rail simulators for a demo, settle in-flight
operations, load FX rates."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

import typer

from settlement.cli.common import console, state

app = typer.Typer(help="Payments: rail simulators, the janitor, FX rates.", no_args_is_help=True)


@app.command("simulate")
def simulate(config_out: Path = typer.Option(..., "--config-out", help="write the rails configuration here"),
             rails: str = typer.Option("mir,unionpay,alipay", "--rails", help="comma-separated rail names"),
             public_base_url: str = typer.Option("", "--notify-base",
                                                 help="base URL of the API, for notification URLs")) -> None:
    """Start the rails' simulators on loopback ports and write the configuration the
    service needs to reach them (point SETTLEMENT_RAILS_CONFIG_FILE at it). Runs until
    interrupted."""
    from adapters.registry import get_rail_plugin

    started = []
    config: dict[str, dict[str, str]] = {}
    try:
        for name in [n.strip() for n in rails.split(",") if n.strip()]:
            simulator = get_rail_plugin(name).create_simulator()
            simulator.start()
            started.append(simulator)
            config[name] = simulator.adapter_config()
            if public_base_url:
                config[name]["notify_url"] = f"{public_base_url.rstrip('/')}/v1/notifications/{name}"
        config_out.write_text(json.dumps(config, indent=2))
        console.print(f"simulating {', '.join(config)}; configuration in {config_out}", highlight=False)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
    finally:
        for simulator in started:
            simulator.stop()


@app.command("janitor")
def janitor(ctx: typer.Context, rail: str | None = typer.Option(None, "--rail")) -> None:
    """Ask the rails about every due in-flight operation and settle it (what the beat
    schedule runs every 30 seconds)."""
    from settlement.payments.rails import rails_from_settings
    from settlement.payments.service import janitor as service
    from settlement.payments.service.flows import Context

    cli = state(ctx)
    report = service.reconcile(Context.from_settings(cli.factory, rails_from_settings(cli.settings), cli.settings),
                               rail=rail)
    console.print(f"settled {len(report.settled)}, still pending {len(report.still_pending)}, "
                  f"unreachable {len(report.unreachable)}, payouts settled {len(report.payouts_settled)}",
                  highlight=False)


@app.command("fx-refresh")
def fx_refresh(ctx: typer.Context) -> None:
    """Store a rate snapshot from SETTLEMENT_FX_RATES_SOURCE."""
    from settlement.db import unit_of_work
    from settlement.fx import service
    from settlement.fx.sources import source_from_setting
    from settlement.payments.rails import rails_from_settings

    cli = state(ctx)
    source = source_from_setting(cli.settings.fx_rates_source, rails_from_settings(cli.settings).get)
    with unit_of_work(cli.factory) as session:
        for row in service.refresh(session, source):
            console.print(f"{row.base_currency}/{row.quote_currency} {row.rate} ({row.source})", highlight=False)
