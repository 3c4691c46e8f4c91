"""``settlement serve``: the HTTP API under uvicorn."""

from __future__ import annotations

import os

import typer

from settlement.cli.common import state

app = typer.Typer(help="Run the HTTP API.")


@app.callback(invoke_without_command=True)
def serve(ctx: typer.Context,
          host: str | None = typer.Option(None, "--host", help="default SETTLEMENT_API_HOST (127.0.0.1)"),
          port: int | None = typer.Option(None, "--port", help="default SETTLEMENT_API_PORT (8000)"),
          workers: int | None = typer.Option(None, "--workers", help="processes; default SETTLEMENT_API_WORKERS")
          ) -> None:
    """Serve the API (OpenAPI at /openapi.json). Several workers share the port."""
    import uvicorn

    settings = state(ctx).settings
    # Worker processes build their app from the environment: pass the URL on.
    os.environ["SETTLEMENT_DATABASE_URL"] = settings.database_url
    uvicorn.run("settlement.api.app:app_from_environment", factory=True, host=host or settings.api_host,
                port=port or settings.api_port, workers=workers or settings.api_workers, log_level="warning",
                access_log=False)
