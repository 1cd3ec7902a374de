"""The web UI: storefront (`/`) and admin dashboard (`/admin`), plain files served by the API process.

No build step and no external requests: HTML, CSS and JS live in `static/`; product images are
generated SVG placeholders; the public API key reaches the page through `/config.js`.
"""

from __future__ import annotations

import hashlib
import json
from html import escape
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)


@router.get("/")
def storefront() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html")


@router.get("/admin")
def admin() -> FileResponse:
    return FileResponse(STATIC / "admin.html", media_type="text/html")


@router.get("/config.js")
def config_js(request: Request) -> Response:
    """Browser configuration: the *public* (read + events) key only; admin keys are typed by a person."""
    settings = request.app.state.settings
    keys = settings.service.public_keys
    body = "window.SHOPREC = " + json.dumps({"apiKey": keys[0] if keys else "", "api": "/v1"}) + ";"
    return Response(body, media_type="application/javascript", headers={"Cache-Control": "no-store"})


@router.get("/static/img/{slug}.svg")
def placeholder_image(slug: str) -> Response:
    """A deterministic SVG tile per category slug (the demo shop's image URLs point here)."""
    hue = int(hashlib.md5(slug.encode()).hexdigest()[:4], 16) % 360
    label = escape(slug.replace("-", " ")[:18])
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 150" role="img" aria-label="{label}">'
           f'<rect width="200" height="150" fill="hsl({hue},55%,88%)"/>'
           f'<circle cx="100" cy="62" r="34" fill="hsl({hue},45%,62%)"/>'
           f'<text x="100" y="130" font-family="sans-serif" font-size="14" text-anchor="middle" fill="hsl({hue},40%,30%)">{label}</text></svg>')
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


def mount_web(app: FastAPI) -> None:
    """Add the UI routes and the static folder to the API app."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
