"""A small OPA-REST-protocol server whose evaluation is the real OPA evaluator, for the tests and
benchmarks of `--opa-url` (docs/opa.md, "The test server").

No `opa` binary can be installed here, but OPA's own Go evaluator is, inside the
`opa-golib-python-bindings` wheel (`opa_bindings.OpaEngine`). This module speaks the part of
OPA's REST API that pipewarden and `opa-python-client` use, and hands every evaluation to that
evaluator:

    PUT    /v1/policies/{id}     a Rego module (text/plain); all modules are compiled together,
                                 a module that does not compile is refused (400), as OPA does
    GET    /v1/policies          {"result": [{"id", "raw", "ast": {"package": {"path": [...]}}}]}
    GET    /v1/policies/{id}     {"result": {...}}; 404 when unknown
    DELETE /v1/policies/{id}     {}; 404 when unknown; 400 when the others no longer compile
    POST   /v1/data[/{path}]     {"input": ...} -> {"result": VALUE}, or {} when undefined;
    GET    /v1/data[/{path}]     500 {"code": "internal_error", "message"} when evaluation fails
                                 (the evaluator stops at a builtin's error, as OPA does with
                                 `?strict-builtin-errors=true`, which pipewarden sends; other
                                 query parameters are ignored)
    GET    /health               {} (never needs the token, as OPA's health check is usually open)

With a token, every other request needs `Authorization: Bearer TOKEN` (401 otherwise, as OPA
with `--authentication=token` and a token-checking authorization policy answers).

Run as a script it serves in the foreground and prints its port first:
`python tests/opa_server.py [--port 0] [--token T]`; `running_server()` starts it so, in a
process group of its own, and stops it. `OpaTestServer` serves from a thread of this process.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from opa_bindings import OpaEngine, OpaError, OpaUndefinedError

_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
_PLACE = re.compile(r"^(?P<file>[^\s:]+):(?P<row>\d+): (?P<code>rego_\w+): (?P<message>.*)$")


@dataclass(frozen=True)
class _Modules:
    """The modules as of one change (a new object per change: engines compiled from an older
    version are dropped by the threads that hold them)."""

    version: int
    texts: dict[str, str]


def _compile(texts: dict[str, str]) -> OpaEngine:
    """A fresh OPA engine with every module, compiled (OPA compiles lazily: a first query forces
    it). OpaError when the modules do not compile together."""
    engine = OpaEngine()
    try:
        for module_id, text in sorted(texts.items()):
            engine.add_policy(module_id, text)
        engine.eval_query("true")
    except BaseException:
        engine.close()
        raise
    return engine


def _compile_errors(error: OpaError) -> list[dict[str, Any]]:
    """OPA's `errors` list of a compile error from the evaluator's message."""
    found = []
    for line in error.message.splitlines():
        match = _PLACE.match(line.strip())
        if match is not None:
            found.append({"code": match["code"], "message": match["message"],
                          "location": {"file": match["file"], "row": int(match["row"]), "col": 1}})
    return found or [{"code": error.code, "message": error.message}]


def _ast(text: str) -> dict[str, Any]:
    """The part of OPA's module AST that clients read: the package path."""
    match = _PACKAGE.search(text)
    parts = match.group(1).split(".") if match else []
    return {"package": {"path": [{"type": "var", "value": "data"}]
                        + [{"type": "string", "value": part} for part in parts]}}


class PolicyStore:
    """The modules and, per serving thread, an engine compiled from the latest ones (the OPA
    engine serialises evaluations on one instance; an engine per thread evaluates in parallel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modules = _Modules(0, {})
        self._local = threading.local()
        # False: the policies list leaves out the modules' syntax trees (as a server that is not
        # OPA itself may), so that clients must find packages another way.
        self.trees = True

    def put(self, module_id: str, text: str) -> None:
        """Add or replace a module; OpaError (nothing changed) when the modules do not compile."""
        with self._lock:
            texts = dict(self._modules.texts)
            texts[module_id] = text
            _compile(texts).close()
            self._modules = _Modules(self._modules.version + 1, texts)

    def delete(self, module_id: str) -> bool:
        """Remove a module; False when there is none; OpaError when the rest does not compile."""
        with self._lock:
            if module_id not in self._modules.texts:
                return False
            texts = {k: v for k, v in self._modules.texts.items() if k != module_id}
            _compile(texts).close()
            self._modules = _Modules(self._modules.version + 1, texts)
            return True

    def clear(self) -> None:
        """Forget every module, as an OPA without persistence does when it restarts."""
        with self._lock:
            self._modules = _Modules(self._modules.version + 1, {})

    def modules(self) -> dict[str, str]:
        return dict(self._modules.texts)

    def engine(self) -> OpaEngine:
        modules = self._modules
        held: tuple[int, OpaEngine] | None = getattr(self._local, "engine", None)
        if held is not None and held[0] == modules.version:
            return held[1]
        if held is not None:
            held[1].close()
        engine = _compile(modules.texts)
        self._local.engine = (modules.version, engine)
        return engine


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (40 ms a request on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None or self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self._send(401, {"code": "unauthorized", "message": "missing or invalid authorization token"})
        return False

    def _route(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        body = self._body()
        if path == "/health" and method == "GET":
            self._send(200, {})
            return
        if not self._authorized():
            return
        store = self.server.store
        if path.rstrip("/") == "/v1/policies" and method == "GET":
            self._send(200, {"result": [{"id": k, "raw": v, **({"ast": _ast(v)} if store.trees else {})}
                                        for k, v in sorted(store.modules().items())]})
        elif path.startswith("/v1/policies/"):
            self._policy(method, path[len("/v1/policies/"):], body)
        elif (path == "/v1/data" or path.startswith("/v1/data/")) and method in ("GET", "POST"):
            self._data(path[len("/v1/data"):].strip("/"), body if method == "POST" else b"")
        else:
            self._send(404, {"code": "resource_not_found", "message": f"{method} {path} is not served here"})

    def _policy(self, method: str, module_id: str, body: bytes) -> None:
        store = self.server.store
        if method == "PUT":
            try:
                store.put(module_id, body.decode("utf-8"))
            except (OpaError, UnicodeDecodeError) as exc:
                errors = _compile_errors(exc) if isinstance(exc, OpaError) else [{"message": str(exc)}]
                self._send(400, {"code": "invalid_parameter", "message": "error(s) occurred while compiling module(s)",
                                 "errors": errors})
                return
            self._send(200, {})
        elif method == "GET":
            text = store.modules().get(module_id)
            if text is None:
                self._send(404, {"code": "resource_not_found", "message": f'storage_not_found_error: policy id "{module_id}"'})
            else:
                self._send(200, {"result": {"id": module_id, "raw": text, "ast": _ast(text)}})
        elif method == "DELETE":
            try:
                deleted = store.delete(module_id)
            except OpaError as exc:
                self._send(400, {"code": "invalid_parameter", "message": "error(s) occurred while compiling module(s)",
                                 "errors": _compile_errors(exc)})
                return
            if deleted:
                self._send(200, {})
            else:
                self._send(404, {"code": "resource_not_found", "message": f'storage_not_found_error: policy id "{module_id}"'})
        else:
            self._send(405, {"code": "method_not_allowed", "message": f"{method} is not allowed here"})

    def _data(self, path: str, body: bytes) -> None:
        with self.server.count_lock:
            self.server.data_requests += 1
        try:
            request = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            self._send(400, {"code": "invalid_parameter", "message": f"body is not JSON: {exc}"})
            return
        if not isinstance(request, dict):
            self._send(400, {"code": "invalid_parameter", "message": "body must be an object"})
            return
        try:
            value = self.server.store.engine().eval_document(path.replace("/", "."), request.get("input"))
        except OpaUndefinedError:
            self._send(200, {})
            return
        except OpaError as exc:
            self._send(500, {"code": "internal_error", "message": exc.message})
            return
        self._send(200, {"result": value})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")

    def do_DELETE(self) -> None:
        self._route("DELETE")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], token: str | None, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(address, _Handler)
        if tls is not None:  # HTTPS: the handshake happens as a connection is accepted
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.token = token
        self.store = PolicyStore()
        self.data_requests = 0  # Data API requests served (a test can tell it was asked)
        self.count_lock = threading.Lock()


class OpaTestServer:
    """The server on a free loopback port, served from a thread of this process until `stop()`
    (or the end of a `with` block). `url` is its base URL; with `tls` (certificate file, key
    file) it speaks HTTPS."""

    def __init__(self, token: str | None = None, tls: tuple[str, str] | None = None) -> None:
        context = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
        self._server = _Server(("127.0.0.1", 0), token, context)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.store = self._server.store
        self._thread = threading.Thread(target=self._server.serve_forever, name="opa-test-server", daemon=True)
        self._thread.start()

    @property
    def data_requests(self) -> int:
        """Data API requests served so far."""
        return self._server.data_requests

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running_server(token: str | None = None) -> Iterator[str]:
    """The server in a process of its own (its own process group, stopped at the end): its base
    URL. A separate process, so that a test's forked workers never inherit a serving thread and
    the server's work does not share this process's interpreter lock."""
    command = [sys.executable, str(Path(__file__).resolve()), "--port", "0"]
    if token is not None:
        command += ["--token", token]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the OPA test server did not start (it printed {line!r})")
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()
    server = _Server(("127.0.0.1", args.port), args.token)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
