"""The JSON API (`/api/v1`, server.md): parse the request, call one function of the read model or
one method of the engine client, answer JSON.

Errors are `{"error": MESSAGE}`: 400 for a bad body, parameter or value (`InvalidValue`,
`ValueError`), 401 without the right bearer token, 404 for what does not exist (`NotFound`), 409
for an action that does not apply now (`Refused`; the client already wrote its `refused` event).

Every request but `/api/v1/health` needs `Authorization: Bearer TOKEN`; the admin token (compared
in constant time) acts as `admin`. Store reads run in a worker thread: SQLite may wait on the
writer's lock, and the event loop must keep answering meanwhile.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipewarden.engine import queries
from pipewarden.engine.domain.errors import InvalidValue, NotFound, Refused
from pipewarden.engine.domain.ids import parse_since
from pipewarden.engine.domain.overrides import DEFAULT_TTL_SECONDS
from pipewarden.model.durations import duration_seconds
from pipewarden.web.services import WebServices

ADMIN_ACTOR = "admin"
API_MAX_BODY_BYTES = 64 * 1024
"""No request of the JSON API needs more; larger bodies are refused (413) before they are read whole."""
MAX_LIMIT = 1000
NDJSON = "application/x-ndjson"

Handler = Callable[[Request, WebServices, str], Awaitable[Response]]


class BadRequest(Exception):
    """A request this API cannot read (400)."""


class Unauthorized(Exception):
    """No or a wrong bearer token (401)."""


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def actor_of(request: Request, services: WebServices) -> str:
    """The authenticated user of a request; Unauthorized without the right bearer token."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("no credentials: send Authorization: Bearer TOKEN")
    if not hmac.compare_digest(token.strip().encode("utf-8"), services.token.encode("utf-8")):
        raise Unauthorized("bad credentials: the token is not valid here")
    return ADMIN_ACTOR


def _endpoint(services: WebServices, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            actor = actor_of(request, services)
            return await handler(request, services, actor)
        except Unauthorized as denied:
            return JSONResponse({"error": str(denied)}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        except (BadRequest, InvalidValue, ValueError) as bad:
            return error(400, str(bad))
        except NotFound as missing:
            return error(404, str(missing) or "not found")
        except Refused as refused:
            return error(409, str(refused))

    return endpoint


# ---------------------------------------------------------------- request parsing


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


def _text(body: Mapping[str, Any], key: str, *, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"{key!r} is required")
        return None
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{key!r} must be a non-empty string")
    return value


def _required(body: Mapping[str, Any], key: str) -> str:
    value = _text(body, key, required=True)
    assert value is not None
    return value


def _flag(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{key!r} must be true or false")
    return value


def _ttl(body: Mapping[str, Any]) -> int:
    """`ttl`: a duration (`90m`, `1h`) or whole seconds; default 1h."""
    value = body.get("ttl")
    if value is None:
        return DEFAULT_TTL_SECONDS
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        seconds = duration_seconds(value)
    else:
        raise BadRequest("'ttl' must be a duration such as '1h' or a number of seconds")
    if seconds <= 0:
        raise BadRequest(f"'ttl' must be positive, not {value!r}")
    return seconds


def _query_int(request: Request, key: str, default: int, *, low: int, high: int) -> int:
    text = request.query_params.get(key)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadRequest(f"{key}={text!r}: expected a whole number from {low} to {high}")
    return int(text)


def _query_text(request: Request, key: str) -> str | None:
    return request.query_params.get(key) or None


# ---------------------------------------------------------------- reads


async def list_pipelines(request: Request, services: WebServices, actor: str) -> Response:
    return JSONResponse(await run_in_threadpool(partial(queries.pipeline_list, services.store, now=services.clock())))


async def show_pipeline(request: Request, services: WebServices, actor: str) -> Response:
    name = request.path_params["name"]
    return JSONResponse(await run_in_threadpool(
        partial(queries.pipeline_status, services.store, name, now=services.clock())))


async def list_executions(request: Request, services: WebServices, actor: str) -> Response:
    limit = _query_int(request, "limit", queries.DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
    return JSONResponse(await run_in_threadpool(partial(
        queries.executions_list, services.store, pipeline=_query_text(request, "pipeline"), limit=limit)))


async def show_execution(request: Request, services: WebServices, actor: str) -> Response:
    return JSONResponse(await run_in_threadpool(queries.execution_show, services.store, request.path_params["id"]))


async def list_events(request: Request, services: WebServices, actor: str) -> Response:
    since_text = _query_text(request, "since")
    since = None if since_text is None else parse_since(since_text)
    after = _query_int(request, "after", 0, low=0, high=2**62)
    limit = _query_int(request, "limit", 0, low=0, high=2**62) or None
    found = await run_in_threadpool(partial(
        queries.events, services.store, pipeline=_query_text(request, "pipeline"),
        execution=_query_text(request, "execution"), since=since, after=after, limit=limit))
    if NDJSON in request.headers.get("accept", ""):
        lines = "".join(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n" for event in found)
        return Response(lines, media_type=NDJSON)
    return JSONResponse(found)


# ---------------------------------------------------------------- actions


async def release(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    record = await services.client.release(_required(body, "pipeline"), _text(body, "commit"), actor=actor,
                                           reason=_text(body, "reason"))
    return JSONResponse(queries.execution_json(record), status_code=201)


def _done(action: str, **about: Any) -> JSONResponse:
    return JSONResponse({"action": action, **about})


async def approve(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    ident, stage = request.path_params["id"], _required(body, "stage")
    approval = _text(body, "approval")
    given = await services.client.approve(ident, stage, approval, actor=actor, reason=_text(body, "reason"))
    # The engine answers with the approval it recorded (the stage's only one when none was named).
    return _done("approve", execution=ident, stage=stage, approval=given if isinstance(given, str) else approval)


async def promote(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    ident, stage = request.path_params["id"], _required(body, "stage")
    await services.client.promote(ident, stage, actor=actor, reason=_text(body, "reason"))
    return _done("promote", execution=ident, stage=stage)


async def reject(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    ident, stage = request.path_params["id"], _required(body, "stage")
    await services.client.reject(ident, stage, actor=actor, reason=_text(body, "reason"))
    return _done("reject", execution=ident, stage=stage)


async def retry(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    ident, stage = request.path_params["id"], _required(body, "stage")
    await services.client.retry(ident, stage, actor=actor, reason=_text(body, "reason"))
    return _done("retry", execution=ident, stage=stage)


async def cancel(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    ident = request.path_params["id"]
    await services.client.cancel(ident, actor=actor, reason=_text(body, "reason"))
    return _done("cancel", execution=ident)


async def pause(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    name = request.path_params["name"]
    await services.client.pause(name, actor=actor, reason=_text(body, "reason"))
    return _done("pause", pipeline=name)


async def resume(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    name = request.path_params["name"]
    await services.client.resume(name, actor=actor, reason=_text(body, "reason"))
    return _done("resume", pipeline=name)


async def rollback(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    name, stage, to = request.path_params["name"], _required(body, "stage"), _text(body, "to")
    paused = _flag(body, "pause", True)
    replaced = await services.client.rollback(name, stage, to, paused, actor=actor, reason=_text(body, "reason"))
    # The engine answers with the artifact being rolled back (replaced).
    return _done("rollback", pipeline=name, stage=stage, to=to, pause=paused,
                 artifact=replaced if isinstance(replaced, str) else None)


async def override(request: Request, services: WebServices, actor: str) -> Response:
    body = await _body(request)
    name, gate, stage = request.path_params["name"], _required(body, "gate"), _required(body, "stage")
    reason = _text(body, "reason")
    if reason is None or not reason.strip():
        raise BadRequest("an override needs a 'reason'")
    await services.client.override(name, stage, gate, _ttl(body), actor=actor, reason=reason)
    granted = await run_in_threadpool(partial(services.store.overrides, pipeline=name))
    found = [o.to_json() for o in granted if (o.stage, o.gate) == (stage, gate)]
    return _done("override", pipeline=name, stage=stage, override=found[0] if found else None)


async def revoke_override(request: Request, services: WebServices, actor: str) -> Response:
    name = request.path_params["name"]
    gate = _query_text(request, "gate")
    stage = _query_text(request, "stage")
    if gate is None or stage is None:
        raise BadRequest("revoking an override needs ?gate=G&stage=S")
    await services.client.revoke_override(name, stage, gate, actor=actor, reason=_query_text(request, "reason"))
    return _done("revoke_override", pipeline=name, stage=stage, gate=gate)


# ---------------------------------------------------------------- health and routes


def _health(services: WebServices) -> Callable[[Request], Awaitable[Response]]:
    async def health(request: Request) -> Response:
        try:
            healthy = await services.health()
        except Exception:  # noqa: BLE001 - a failing probe is an unhealthy server, not a 500
            healthy = False
        if healthy:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status_code=503)

    return health


def routes(services: WebServices) -> list[Route]:
    """The `/api/v1` routes bound to `services`."""

    def route(path: str, handler: Handler, method: str) -> Route:
        return Route(path, _endpoint(services, handler), methods=[method], max_body_size=API_MAX_BODY_BYTES)

    return [
        Route("/api/v1/health", _health(services), methods=["GET"]),
        route("/api/v1/pipelines", list_pipelines, "GET"),
        route("/api/v1/pipelines/{name}", show_pipeline, "GET"),
        route("/api/v1/pipelines/{name}/override", override, "POST"),
        route("/api/v1/pipelines/{name}/override", revoke_override, "DELETE"),
        route("/api/v1/pipelines/{name}/pause", pause, "POST"),
        route("/api/v1/pipelines/{name}/resume", resume, "POST"),
        route("/api/v1/pipelines/{name}/rollback", rollback, "POST"),
        route("/api/v1/executions", list_executions, "GET"),
        route("/api/v1/executions", release, "POST"),
        route("/api/v1/executions/{id}", show_execution, "GET"),
        route("/api/v1/executions/{id}/approve", approve, "POST"),
        route("/api/v1/executions/{id}/promote", promote, "POST"),
        route("/api/v1/executions/{id}/reject", reject, "POST"),
        route("/api/v1/executions/{id}/cancel", cancel, "POST"),
        route("/api/v1/executions/{id}/retry", retry, "POST"),
        route("/api/v1/events", list_events, "GET"),
    ]
