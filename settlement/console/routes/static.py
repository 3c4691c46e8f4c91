"""The console's stylesheet, script and icon, from the package (no build step)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

router = APIRouter()

FILES = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8",
         "favicon.svg": "image/svg+xml"}


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    media_type = FILES.get(name)
    if media_type is None:
        raise HTTPException(status_code=404)
    content = resources.files("settlement.console").joinpath("static", name).read_bytes()
    return Response(content, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"})
