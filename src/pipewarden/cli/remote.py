"""The client commands' HTTP side (engine.md "Clients"): which server, which token, one request,
and the exit code of its answer.

- Server: `--server URL`, else `$PIPEWARDEN_SERVER`, else the `url` of `server.json` in
  `--state-dir` (default: the default state dir).
- Token: `$PIPEWARDEN_TOKEN`, else the `admin-token` file of that state dir, which is sent only
  when the server's host is a loopback address (the admin's own token never leaves the machine).
- Exit codes (computed here and nowhere else): 0 done; 1 refused (HTTP 403 or 409); 2 for usage,
  configuration and connection errors, 400, 401, 404 and server errors, each with one line on
  stderr.

httpx is imported only when a client command runs (the rest of the CLI does not pay for it).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from pipewarden.engine.statedir import default_state_dir, read_server_info, read_token

if TYPE_CHECKING:
    import httpx

OK = 0
REFUSED = 1
ERROR = 2

SERVER_ENV = "PIPEWARDEN_SERVER"
TOKEN_ENV = "PIPEWARDEN_TOKEN"
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 60.0


class RemoteFailure(Exception):
    """A client command that did not get its answer: one line for stderr and its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # one line, whatever the server wrote
        self.exit_code = exit_code


def exit_code_of(status: int) -> int:
    """The exit code of an HTTP answer: 0 for 2xx, 1 for 403 and 409, else 2."""
    if 200 <= status < 300:
        return OK
    if status in (403, 409):
        return REFUSED
    return ERROR


def is_loopback(url: str) -> bool:
    """True when the URL's host is a loopback address (127.0.0.0/8, ::1) or `localhost`."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Target:
    """The server a command talks to and the token it sends (None: no Authorization header)."""

    url: str
    token: str | None


def resolve(server: str | None, state_dir: str | None, environ: Mapping[str, str] | None = None) -> Target:
    """The server URL and token of engine.md "Clients"; RemoteFailure (exit 2) when there is no
    server to talk to or its URL is not an http(s) URL."""
    env = os.environ if environ is None else environ
    directory = Path(state_dir) if state_dir else default_state_dir()
    url = server or env.get(SERVER_ENV) or None
    if url is None:
        info = read_server_info(directory)
        if info is None:
            raise RemoteFailure(f"no server to talk to: give --server URL or set ${SERVER_ENV}, or start "
                                f"`pipewarden server` (no readable {directory / 'server.json'})", ERROR)
        url = info.url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteFailure(f"bad server URL {url!r}: expected http://HOST:PORT", ERROR)
    token = env.get(TOKEN_ENV) or None
    if token is None and is_loopback(url):
        token = read_token(directory)
    return Target(url.rstrip("/"), token)


class Remote:
    """One server's JSON API. Each call answers the decoded JSON of a 2xx answer, or raises
    RemoteFailure with the server's `error` message and the exit code of its status."""

    def __init__(self, target: Target) -> None:
        import httpx

        self.target = target
        headers = {"User-Agent": "pipewarden"}
        if target.token is not None:
            headers["Authorization"] = f"Bearer {target.token}"
        self._client = httpx.Client(
            base_url=target.url, headers=headers, follow_redirects=False,
            timeout=httpx.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self._send("GET", path, params=_params(params)))

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self._json(self._send("POST", path, json=dict(body or {})))

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._json(self._send("DELETE", path, params=_params(params)))

    def lines(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[str]:
        """A JSON-lines answer, line by line as it arrives (`events --format jsonl`)."""
        import httpx

        try:
            with self._client.stream("GET", path, params=_params(params),
                                     headers={"Accept": "application/x-ndjson"}) as answer:
                if not 200 <= answer.status_code < 300:
                    answer.read()
                    self._json(answer)
                for line in answer.iter_lines():
                    if line:
                        yield line
        except httpx.HTTPError as error:
            raise self._unreachable(error) from None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise self._unreachable(error) from None

    def _unreachable(self, error: Exception) -> RemoteFailure:
        return RemoteFailure(f"cannot reach the server at {self.target.url}: {error or type(error).__name__}", ERROR)

    def _json(self, answer: httpx.Response) -> Any:
        code = exit_code_of(answer.status_code)
        try:
            body = answer.json()
        except ValueError:
            body = None
        if code == OK:
            if body is None and answer.content:
                raise RemoteFailure(f"the server at {self.target.url} answered something that is not JSON", ERROR)
            return body
        message = body.get("error") if isinstance(body, dict) else None
        if not isinstance(message, str) or not message:
            message = answer.text.strip()[:200] or answer.reason_phrase
        if answer.status_code == 401:
            message += (f" (set ${TOKEN_ENV}; the state dir's admin-token is sent only to loopback servers)"
                        if self.target.token is None else "")
        raise RemoteFailure(f"{message} (HTTP {answer.status_code})", code)


def _params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (params or {}).items() if value is not None}


def dumps(value: Any) -> str:
    """JSON as the client commands print it (`--format json`)."""
    return json.dumps(value, indent=2, ensure_ascii=False)
