"""The OPA decision API (server.md, "OPA"): OPA's Data API for pipewarden's own decisions, so a
deploy tool that can ask OPA (curl, `opa-python-client`, Spinnaker, Argo CD hooks) can ask
pipewarden. The answers come from `services.decisions` (engine/decisions.py); this module only
reads the request, walks the path and writes OPA's response shape.

The documents (under OPA's `data`):

- `pipewarden.release.allow`, for an input `{"pipeline", "stage", "commit"}`: the object
  `{"allow": BOOL, "reason", "gates": [...], ...}`; deeper paths select inside it, so
  `/v1/data/pipewarden/release/allow/allow` is the boolean alone.
- `pipewarden.check`, for an input that is a pipeline document: `{"findings": [...], "allow",
  "pipeline"}`.
- A parent path (`/v1/data`, `/v1/data/pipewarden`, `/v1/data/pipewarden/release`) answers the
  object of the documents below it that its input fits (release: an object with `pipeline`,
  `stage` and `commit`; check: an object with `apiVersion` or `kind`).
- Any other path is undefined: 200 `{}`, no `result` (as OPA answers an undefined document).

`GET /health` answers OPA's health API (200 `{}`, or 500 while the server is not healthy), with
the token like the rest.

Requests: `POST` with a JSON body `{"input": ...}` (an empty body: no input), or `GET` with the
input as JSON in the `input` query parameter. `?pretty=true` indents the answer;
`?metrics=true` adds `metrics.timer_server_handler_ns`; other OPA parameters (`explain`,
`instrument`, `provenance`) are accepted and ignored.

Errors have pipewarden's `{"error": MESSAGE}` and OPA's `code` and `message`: 400
`invalid_parameter` (a body that is not JSON or not an object, a missing or malformed input of
release/allow or check), 401 `unauthorized` (no or a wrong bearer token, as the JSON API), 500
`internal_error` (the server cannot decide now: its org config or policies do not load). A
decision never fails open: what the engine cannot observe is a gate that waits or fails, so
`allow` is false.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipewarden.engine.decisions import DecisionError
from pipewarden.engine.domain.errors import InvalidValue
from pipewarden.web.api import Unauthorized, actor_of
from pipewarden.web.services import WebServices

MAX_BODY_BYTES = 4 * 1024 * 1024
"""A check's input is a whole pipeline document (the loader takes files up to 1 MiB of YAML,
which grows as JSON); larger bodies are refused (413) before they are read whole."""

RELEASE_PATH = ("pipewarden", "release", "allow")
CHECK_PATH = ("pipewarden", "check")
_NO_INPUT = object()


class _Undefined(Exception):
    """The path names no document for this input: 200 `{}`."""


def _opa_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "code": code, "message": message}, status_code=status,
                        headers=dict(headers or {}))


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("", "true", "1")


async def _input(request: Request) -> object:
    """The request's input: `input` of the JSON body (POST) or of the `input` query parameter
    (GET); `_NO_INPUT` when there is none. InvalidValue for JSON that does not parse or a body
    that is not an object."""
    if request.method == "GET":
        text = request.query_params.get("input")
        if text is None:
            return _NO_INPUT
        try:
            return json.loads(text)
        except ValueError:
            raise InvalidValue("the input query parameter is not JSON") from None
    raw = await request.body()
    if not raw.strip():
        return _NO_INPUT
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidValue('the body is not JSON: send {"input": ...}') from None
    if not isinstance(body, dict):
        raise InvalidValue('the body must be a JSON object: {"input": ...}')
    return body.get("input", _NO_INPUT)


def release_input(value: object) -> tuple[str, str, str]:
    """(pipeline, stage, commit) of a release decision's input; InvalidValue naming what is
    missing or not a non-empty string."""
    if value is _NO_INPUT:
        raise InvalidValue('input is required: {"input": {"pipeline": NAME, "stage": STAGE, "commit": SHA}}')
    if not isinstance(value, dict):
        raise InvalidValue('input must be an object: {"pipeline": NAME, "stage": STAGE, "commit": SHA}')
    parts: list[str] = []
    for key in ("pipeline", "stage", "commit"):
        part = value.get(key)
        if not isinstance(part, str) or not part.strip():
            raise InvalidValue(f"input.{key} is required (a non-empty string)")
        parts.append(part.strip())
    return parts[0], parts[1], parts[2]


def _fits_release(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(value.get(k), str) for k in ("pipeline", "stage", "commit"))


def _fits_check(value: object) -> bool:
    return isinstance(value, dict) and ("apiVersion" in value or "kind" in value)


async def _release(services: WebServices, value: object) -> dict[str, Any]:
    pipeline, stage, commit = release_input(value)
    return await run_in_threadpool(partial(services.decisions.release, pipeline, stage, commit,
                                           now=services.clock()))


async def _check(services: WebServices, value: object) -> dict[str, Any]:
    if value is _NO_INPUT:
        raise InvalidValue('input is required: {"input": PIPELINE_DOCUMENT}')
    return await run_in_threadpool(partial(services.decisions.check, value, now=services.clock()))


def _select(document: object, path: list[str]) -> object:
    """The part of `document` that `path` names (object keys, array indexes); _Undefined when
    there is none."""
    for segment in path:
        if isinstance(document, dict) and segment in document:
            document = document[segment]
        elif isinstance(document, list) and segment.isdigit() and int(segment) < len(document):
            document = document[int(segment)]
        else:
            raise _Undefined
    return document


async def _document(services: WebServices, path: list[str], value: object) -> object:
    """The document at `path` (`data` split at `/`) for the input `value`."""
    if tuple(path[:3]) == RELEASE_PATH:
        return _select(await _release(services, value), path[3:])
    if tuple(path[:2]) == CHECK_PATH:
        return _select(await _check(services, value), path[2:])
    if tuple(path) != RELEASE_PATH[:len(path)]:
        raise _Undefined
    # A parent of the documents: the object of those below it that the input fits.
    tree: dict[str, Any] = {"pipewarden": {"release": {}}}
    if _fits_release(value):
        tree["pipewarden"]["release"]["allow"] = await _release(services, value)
    if _fits_check(value):
        tree["pipewarden"]["check"] = await _check(services, value)
    return _select(tree, path)


def _endpoint(services: WebServices) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter_ns()
        try:
            actor_of(request, services)
            path = [segment for segment in request.path_params.get("path", "").split("/") if segment]
            answer: dict[str, Any] = {}
            try:
                answer["result"] = await _document(services, path, await _input(request))
            except _Undefined:
                pass
        except Unauthorized as denied:
            return _opa_error(401, "unauthorized", str(denied), {"WWW-Authenticate": "Bearer"})
        except (InvalidValue, ValueError) as bad:
            return _opa_error(400, "invalid_parameter", str(bad))
        except DecisionError as error:
            return _opa_error(500, "internal_error", str(error))
        if _flag(request, "metrics"):
            answer["metrics"] = {"timer_server_handler_ns": time.perf_counter_ns() - started}
        if _flag(request, "pretty"):
            return Response(json.dumps(answer, indent=2) + "\n", media_type="application/json")
        return JSONResponse(answer)

    return endpoint


def _health(services: WebServices) -> Callable[[Request], Awaitable[Response]]:
    """OPA's health API (`GET /health`, what `OpaClient.check_health` asks): 200 `{}` when the
    server answers as `/api/v1/health` does, else 500. With the token, as every decision path."""
    async def health(request: Request) -> Response:
        try:
            actor_of(request, services)
        except Unauthorized as denied:
            return _opa_error(401, "unauthorized", str(denied), {"WWW-Authenticate": "Bearer"})
        try:
            healthy = await services.health()
        except Exception:  # noqa: BLE001 - a failing probe is an unhealthy server, not a traceback
            healthy = False
        if healthy:
            return JSONResponse({})
        return _opa_error(500, "internal_error", "the server, its worker or Temporal does not answer")

    return health


def routes(services: WebServices) -> list[Route]:
    """The `/v1/data` routes bound to `services` (GET and POST, as OPA's Data API), and OPA's
    `/health`."""
    endpoint = _endpoint(services)
    return [*(Route(path, endpoint, methods=["GET", "POST"], max_body_size=MAX_BODY_BYTES)
              for path in ("/v1/data", "/v1/data/{path:path}")),
            Route("/health", _health(services), methods=["GET"])]
