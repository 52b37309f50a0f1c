"""The API app's operations as the access tests walk them: every route FastAPI serves, included routers'
too (FastAPI >= 0.130 keeps an included router as one entry of ``app.routes``)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import FastAPI
from fastapi.routing import APIRoute


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every APIRoute of ``app`` (with its full path), the documented ones and the others."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined,unused-ignore]
    except ImportError:  # an older FastAPI: app.routes holds the routes themselves
        routes = list(app.routes)
    else:
        routes = [context.original_route for context in iter_route_contexts(app.routes)]
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
