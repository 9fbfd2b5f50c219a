"""`create_app(services)`: the ASGI app `pipewarden server` serves (today the JSON API and the OPA
decision API of server.md; the dashboard's pages join it here).

Every error leaves as JSON `{"error": MESSAGE}`, also those Starlette raises itself (an unknown
path, a wrong method, a body over the size limit) and an unexpected exception (500, its type and
message only: no traceback reaches a client).
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipewarden.web import opa
from pipewarden.web.api import API_MAX_BODY_BYTES, routes
from pipewarden.web.services import WebServices

MAX_BODY_BYTES = max(API_MAX_BODY_BYTES, opa.MAX_BODY_BYTES)
"""No request needs more; larger bodies are refused before they are read whole. Each route has
its own limit below this one (the JSON API's is smaller than a checked pipeline document's)."""

log = logging.getLogger("pipewarden.web")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 else f"no such path: {request.url.path}"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("internal error answering %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


def create_app(services: WebServices) -> Starlette:
    """The web app over a running server's services."""
    return Starlette(
        routes=[*routes(services), *opa.routes(services)],
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        max_body_size=MAX_BODY_BYTES,
    )
