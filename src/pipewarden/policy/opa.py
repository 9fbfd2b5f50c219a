"""Rules evaluated on an organisation's OPA server (`--opa-url`, docs/opa.md): the second backend
of the `RuleEngine` protocol (engine.py), beside the embedded regorus engine (regorus.py).

Through `opa-python-client` (3.x), over OPA's REST API:

- Upload. The catalog's library and rule modules go up once per process and catalog, libraries
  first (a rule calling a library function that OPA does not have yet is refused), under ids
  `pipewarden/<package below "pipewarden.", as a path>/<file name>`, e.g.
  `pipewarden/rules/min_healthy_hosts/min_healthy_hosts.rego`. So an id depends only on the
  module's package and file name, never on where the folder lies, and a second upload of the same
  rules replaces them; a module the server holds with the same text is not sent again. A module
  under `pipewarden/` of one of our packages but another id (a renamed rule file) is deleted
  first: OPA would merge both into the package. Then one small
  module per set of enabled rules, `pipewarden/main/q_<hash>.rego` (package
  `pipewarden.main.q_<hash>`): its `violations` object holds each enabled rule's `deny` set
  (aggregate.py, as the embedded engine asks), so a document is one request.
- With `upload` False (`--opa-no-upload`) nothing is uploaded: the server must hold a module of
  every rule's package already (checked at start); a document is one request for
  `data.pipewarden.rules` (every rule package), of which the enabled rules' `deny` are read.
- Input as with the embedded engine: `{"pipeline": DOCUMENT, "params": {rule id: params}}`; a
  fleet rule gets `{"pipelines": [...]}` at `data.<package>.deny`.
- When the one request of a document fails (OPA answers 500: a rule's error aborts the query;
  builtin errors count, `strict-builtin-errors=true`), each rule's `deny` is asked on its own, so
  the failing rules are found and the others report, as with the embedded engine.
- An answer that is undefined where our modules make it defined means the server lost them (a
  restart without persistence): uploaded again once, else an OpaServerError, never a pass.

Connections. One client per process and backend, shared by all threads: at most
`OpaBackend.concurrency` requests in flight (a semaphore), over as many kept-alive connections
(the client's pool keeps 10, so `concurrency` is capped there and every connection is reused).
A forked worker makes its own client (sockets are not shared across fork) and finds the modules
there already. The per-thread `OpaRuleEngine`s that `engine.engine_for` hands out are light views of it.

Errors. A server that cannot be reached, refuses the token, or answers what OPA would not, is an
`OpaServerError`: one line naming the URL and what to do (the CLI exits 2), never a pass.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import requests
from opa_client import OpaClient  # type: ignore[import-untyped]
from opa_client.errors import (  # type: ignore[import-untyped]
    ConnectionsError,
    PolicyNotFoundError,
    RegoParseError,
)

from pipewarden.errors import PipewardenError, PolicyError, UsageError
from pipewarden.policy.aggregate import aggregator_module, violations_of
from pipewarden.policy.catalog import Catalog
from pipewarden.policy.engine import OpaBackend, RuleFailed, RuleFailure, RuleViolation
from pipewarden.policy.rule import Rule

ID_PREFIX = "pipewarden/"
_AGGREGATOR_PACKAGE = "pipewarden.main"
_RULES_PACKAGE = "pipewarden.rules"
_POOL = 10  # connections opa-python-client's session keeps per host (requests' default pool)
_MAX_ERROR = 500  # characters of OPA's error kept in a finding's message
# `FILE:LINE: WHAT`, how OPA names the place of an evaluation or compile error.
_PLACE = re.compile(r"^(?P<file>\S+?):(?P<line>\d+): (?P<what>.*)$", re.DOTALL)
_PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
T = TypeVar("T")
# OPA makes a builtin that fails (to_number("x"), a bad regex) undefined by default, so a rule
# would silently find nothing where the embedded engine reports it as failed (a `policy-error`
# finding): asked to fail the query instead, OPA answers 500 and the rule is found and reported.
_STRICT = {"strict-builtin-errors": "true"}


class OpaServerError(PipewardenError):
    """The OPA server could not be used (unreachable, refused the token, answered unexpectedly):
    one line naming its URL and what to do."""


@dataclass(frozen=True)
class ServerAddress:
    """`--opa-url` taken apart for `OpaClient`: scheme, host, port, and the path below which
    its REST API (`v1/...`) lives (empty, or `prefix/`)."""

    url: str
    https: bool
    host: str
    port: int
    prefix: str


def parse_url(url: str) -> ServerAddress:
    """`http(s)://host[:port][/prefix]`; a UsageError naming the option otherwise. The port is
    the scheme's (80, 443) when not given, as for any URL; OPA's usual one is 8181."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment
            or any(c.isspace() for c in text)):
        raise UsageError(f"--opa-url {url!r} is not an http(s) URL of an OPA server; write e.g. http://localhost:8181")
    https = parts.scheme == "https"
    host = parts.hostname
    if ":" in host:  # an IPv6 literal goes back into brackets in the URL the client builds
        host = f"[{host}]"
    prefix = parts.path.strip("/")
    return ServerAddress(text.rstrip("/"), https, host, port or (443 if https else 80), f"{prefix}/" if prefix else "")


def _one_line(text: str, limit: int = _MAX_ERROR) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    """A short reason for a failed request (requests' own text is a paragraph)."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.Timeout) or "timed out" in text:
        return "no answer in time"
    found = _ERRNO.search(text)
    if found:
        return found.group(1).strip()
    if "Connection aborted" in text or "RemoteDisconnected" in text or "Connection reset" in text:
        return "the connection was closed"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error: " + _one_line(text, 200)
    return type(exc).__name__


class _EvalFailed(Exception):
    """OPA answered 500 to a query: the evaluation failed; the text is OPA's message."""


@dataclass
class _Prepared:
    """What a catalog became on the server: each Rego file's module id, and back."""

    ids: dict[str, str] = field(default_factory=dict)  # source path -> module id
    paths: dict[str, str] = field(default_factory=dict)  # module id -> source path


def module_id(path: str, text: str) -> str:
    """The id a catalog file is uploaded under: `pipewarden/` + its package below
    `pipewarden.` as a path + its file name (an organisation's library outside `pipewarden.`
    keeps its whole package)."""
    match = _PACKAGE.search(text)
    package = match.group(1) if match else "unnamed"
    below = package.removeprefix("pipewarden.")
    return ID_PREFIX + below.replace(".", "/") + "/" + Path(path).name


# (url, upload, catalog fingerprint) whose modules this process (or the one it was forked from) uploaded
# or found on the server: a forked worker does not upload again.
_PREPARED: dict[tuple[str, str, str], _Prepared] = {}  # (url, upload, fingerprint)
_UPLOADED_AGGREGATORS: set[tuple[str, str]] = set()


class _Connection:
    """One process's client of one OPA server: at most `concurrency` requests at once."""

    def __init__(self, backend: OpaBackend) -> None:
        self.backend = backend
        self.address = parse_url(backend.url)
        self.url = self.address.url
        ssl: bool | str = False
        if self.address.https:
            # requests itself reads REQUESTS_CA_BUNDLE (and CURL_CA_BUNDLE) when verifying; it
            # does not read SSL_CERT_FILE, which OpenSSL tools and Python's ssl module honour:
            # taken here, so that a private CA set either way is trusted (REQUESTS_CA_BUNDLE wins).
            ssl = os.environ.get("SSL_CERT_FILE") or True
        self.client = OpaClient(
            host=self.address.host, port=self.address.port, version=f"{self.address.prefix}v1", ssl=ssl,
            token=backend.token or None, retries=2, timeout=(min(10.0, backend.timeout), backend.timeout),
        )
        self._slots = threading.BoundedSemaphore(max(1, min(backend.concurrency, _POOL)))
        # urllib3 logs each retry of a refused connection as a warning; what a person hears is the
        # outcome, one line (OpaServerError), not the attempts (`server` logs warnings to stderr).
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ errors

    def _unreachable(self, exc: BaseException) -> NoReturn:
        if isinstance(exc, requests.exceptions.SSLError):
            raise OpaServerError(
                f"cannot verify the TLS certificate of the OPA server at {self.url} ({_reason(exc)}): for a private "
                "CA, set REQUESTS_CA_BUNDLE (or SSL_CERT_FILE) to its certificate file") from None
        raise OpaServerError(
            f"cannot reach the OPA server at {self.url} ({_reason(exc)}): check --opa-url and that the server runs, "
            "or leave out --opa-url to evaluate with the embedded engine") from None

    def _refused(self, status: int, what: str, message: str) -> NoReturn:
        if status in (401, 403):
            raise OpaServerError(
                f"the OPA server at {self.url} refused {what} (HTTP {status}: {_one_line(message, 200)}): "
                "check --opa-token (or PIPEWARDEN_OPA_TOKEN) and the server's authorization policy") from None
        if status >= 500:
            raise OpaServerError(
                f"the OPA server at {self.url} answered HTTP {status} to {what} ({_one_line(message, 200)}): the "
                "server, or a proxy in front of it, failed; check its logs and try again") from None
        raise OpaServerError(
            f"the OPA server at {self.url} answered HTTP {status} to {what} ({_one_line(message, 200)}): is --opa-url "
            "the base URL of an OPA server (such as http://localhost:8181)?") from None

    def call(self, what: str, action: Callable[[], T]) -> T:
        """Run one client call in a slot; transport and HTTP errors become OpaServerError, an
        evaluation that failed (HTTP 500 to a query) _EvalFailed."""
        with self._slots:
            try:
                return action()
            except requests.exceptions.HTTPError as exc:
                response = exc.response
                status = response.status_code if response is not None else 0
                message = _message(response)
                if status == 500 and what.startswith("POST /v1/data") and _is_opa_error(response):
                    raise _EvalFailed(message) from None
                self._refused(status, what, message)
            except ConnectionsError as exc:
                cause = exc.__cause__
                if isinstance(cause, requests.exceptions.HTTPError) and cause.response is not None:
                    self._refused(cause.response.status_code, what, _message(cause.response))
                self._unreachable(cause if cause is not None else exc)
            except requests.exceptions.RequestException as exc:
                if isinstance(exc, requests.exceptions.JSONDecodeError):
                    raise OpaServerError(
                        f"the OPA server at {self.url} answered {what} with something that is not JSON: is --opa-url "
                        "the base URL of an OPA server (such as http://localhost:8181)?") from None
                self._unreachable(exc)
            except ValueError as exc:  # a body that is not JSON, read by the client itself
                raise OpaServerError(
                    f"the OPA server at {self.url} answered {what} with something that is not JSON ({_one_line(str(exc), 100)}): "
                    "is --opa-url the base URL of an OPA server (such as http://localhost:8181)?") from None

    # ------------------------------------------------------------------ calls

    def check(self) -> None:
        """The server answers the policies list with this token (OpaServerError otherwise)."""
        self.call("GET /v1/policies", self.client.check_connection)

    def query(self, package: str, rule: str | None, input_data: dict[str, Any], strict: bool = True) -> tuple[bool, Any]:
        """(defined, value) of `data.<package>.<rule>` for this input; _EvalFailed when OPA fails."""
        path = "/".join([*package.split("."), *([rule] if rule else [])])
        params = _STRICT if strict else None
        answer = self.call(f"POST /v1/data/{path}",
                           lambda: self.client.query_rule(input_data, package, rule, query_params=params))
        if not isinstance(answer, dict):
            raise OpaServerError(f"the OPA server at {self.url} answered POST /v1/data/{path} with {type(answer).__name__}, "
                                 "not an object: is --opa-url the base URL of an OPA server?")
        return ("result" in answer, answer.get("result"))

    def deployed_packages(self) -> dict[str, str]:
        """Module id -> package of every module on the server (from its syntax tree's path)."""
        info = self.call("GET /v1/policies", self.client.get_policies_info)
        base = f"{self.client.root_url}/data/"
        packages = {}
        for policy_id, entry in (info or {}).items():
            path = str((entry or {}).get("path", ""))
            if path.startswith(base):
                packages[str(policy_id)] = path[len(base):].replace("/", ".")
        return packages

    def held(self, module: str) -> str | None:
        """The text the server holds under this id, None when it holds none."""
        def ask() -> Any:
            try:
                return self.client.get_policy(module)
            except PolicyNotFoundError:
                return None

        answer = self.call(f"GET /v1/policies/{module}", ask)
        result = answer.get("result") if isinstance(answer, dict) else None
        raw = result.get("raw") if isinstance(result, dict) else None
        return raw if isinstance(raw, str) else None

    def put(self, module: str, text: str, source: str) -> None:
        """Upload one module, unless the server holds that very text under its id already (every
        PUT makes OPA compile all its modules again; a second run or a forked worker changes
        nothing); PolicyError naming the source file when OPA does not accept it."""
        if self.held(module) == text:
            return
        error: Any = None
        with self._slots:
            try:
                self.client.update_policy_from_string(text, module, rego_compat=False)
                return
            except RegoParseError as exc:
                error = exc
            except (requests.exceptions.RequestException, ValueError):
                pass
        if error is None:  # the transport failed: the same call again says how
            self.call(f"PUT /v1/policies/{module}", lambda: self.client.update_policy_from_string(text, module, False))
            return
        if error.expression in ("unauthorized", "forbidden") or not isinstance(error.errors, list):
            self._refused(401 if error.expression == "unauthorized" else 400, f"PUT /v1/policies/{module}",
                          str(error.message))
        raise _upload_error(self.url, error, module, source)

    def delete(self, module: str) -> None:
        self.call(f"DELETE /v1/policies/{module}", lambda: self.client.delete_policy(module))


def _is_opa_error(response: requests.Response | None) -> bool:
    """An error OPA itself wrote (`{"code": ..., "message": ...}`), not a proxy's page."""
    try:
        body = response.json() if response is not None else None
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("code"), str) and "message" in body


def _message(response: requests.Response | None) -> str:
    """OPA's error message in a response (`{"code", "message"}`), else its text."""
    if response is None:
        return "no response"
    try:
        body = response.json()
    except ValueError:
        return _one_line(response.text or response.reason or "", 200)
    if isinstance(body, dict) and body.get("message"):
        code = body.get("code")
        return f"{code}: {body['message']}" if code and response.status_code != 500 else str(body["message"])
    return _one_line(json.dumps(body), 200)


def _upload_error(url: str, error: Any, module: str, source: str) -> PolicyError:
    """A module OPA refused: the first of its errors, at its line of the source file."""
    first = next((e for e in error.errors if isinstance(e, dict)), {})
    location = first.get("location") or {}
    line = location.get("row") if location.get("file") in (module, None) else None
    what = first.get("message") or error.message or "refused"
    return PolicyError(f"the OPA server at {url} does not accept the module {module}: {_one_line(str(what), 300)}",
                       source, int(line) if isinstance(line, int) else 1)


_CONNECTIONS: dict[tuple[OpaBackend, int], _Connection] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _connection(backend: OpaBackend) -> _Connection:
    """This process's client of `backend` (a forked worker makes its own)."""
    key = (backend, os.getpid())
    with _CONNECTIONS_LOCK:
        found = _CONNECTIONS.get(key)
        if found is None:
            found = _CONNECTIONS[key] = _Connection(backend)
        return found


def _after_fork_in_child() -> None:
    global _CONNECTIONS_LOCK
    _CONNECTIONS_LOCK = threading.Lock()  # another thread may have held it at the fork
    _CONNECTIONS.clear()  # the parent's sockets are not this process's to use


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _deployed(connection: _Connection, packages: list[str]) -> set[str]:
    """Which of `packages` the server holds a module of: from the modules' syntax trees (`GET
    /v1/policies`); for a server whose list has no trees, from the data documents themselves
    (`data.pipewarden.rules` and `data.pipewarden.fleet` without input: a package that exists is
    an object there, even with every rule undefined)."""
    listed = set(connection.deployed_packages().values())
    found = {p for p in packages if p in listed}
    if found == set(packages):
        return found
    for top in sorted({".".join(p.split(".")[:2]) for p in packages if p not in found}):
        try:
            defined, tree = connection.query(top, None, {}, strict=False)
        except _EvalFailed:
            continue  # a rule fails without input: the trees were all there was to go by
        for package in packages:
            if package.startswith(top + "."):
                node: Any = tree if defined else None
                for part in package[len(top) + 1:].split("."):
                    node = node.get(part) if isinstance(node, dict) else None
                if isinstance(node, dict):
                    found.add(package)
    return found


def check_server(backend: OpaBackend) -> None:
    """The server can be used as `backend` says: it answers with this token; with `upload`
    False, it holds modules (OpaServerError otherwise, one line naming the URL)."""
    connection = _connection(backend)
    connection.check()
    if backend.upload:
        return
    listed = connection.deployed_packages().values()
    if any(p.startswith(_RULES_PACKAGE + ".") for p in listed):
        return
    try:
        defined, tree = connection.query(_RULES_PACKAGE, None, {}, strict=False)
    except _EvalFailed:
        return  # rules are there (one fails without input): each rule's package is checked later
    if not (defined and isinstance(tree, dict) and tree):
        raise OpaServerError(
            f"the OPA server at {connection.url} has no module of a package under {_RULES_PACKAGE} (--opa-no-upload "
            "uses the rules it already has): deploy pipewarden's policies in its bundle, or leave out --opa-no-upload")


def _prepare(connection: _Connection, catalog: Catalog) -> _Prepared:
    """The catalog on the server: uploaded (or, without upload, found there), once per process."""
    key = (connection.url, str(connection.backend.upload), catalog.fingerprint or f"object {id(catalog)}")
    with connection.lock:
        prepared = _PREPARED.get(key)
        if prepared is not None:
            return prepared
        files = [(path, catalog.texts.get(path) or Path(path).read_text(encoding="utf-8")) for path in catalog.rego_files()]
        prepared = _Prepared()
        for path, text in files:
            prepared.ids[path] = module_id(path, text)
            prepared.paths[prepared.ids[path]] = path
        if connection.backend.upload:
            _upload(connection, catalog, files, prepared)
        else:
            _check_deployed(connection, catalog)
        _PREPARED[key] = prepared
        return prepared


def _upload(connection: _Connection, catalog: Catalog, files: list[tuple[str, str]], prepared: _Prepared) -> None:
    """Put every module up, libraries first; a module refused only because another is still
    missing is tried again after the others (until no pass makes progress)."""
    ours: dict[str, str] = {}
    for path, text in files:
        match = _PACKAGE.search(text)
        if match:
            ours[match.group(1)] = prepared.ids[path]
    owned = set(prepared.paths)
    for existing, package in connection.deployed_packages().items():
        if existing.startswith(ID_PREFIX) and existing not in owned and package in ours:
            connection.delete(existing)  # a renamed file of one of our packages: OPA would merge both
    libraries = set(catalog.library_files)
    pending = sorted(files, key=lambda item: (item[0] not in libraries, prepared.ids[item[0]]))
    while pending:
        refused: list[tuple[str, str]] = []
        first_error: PolicyError | None = None
        for path, text in pending:
            try:
                connection.put(prepared.ids[path], text, path)
            except PolicyError as exc:
                refused.append((path, text))
                first_error = first_error or exc
        if not refused:
            return
        if len(refused) == len(pending):
            assert first_error is not None
            raise first_error
        pending = refused


def _check_deployed(connection: _Connection, catalog: Catalog) -> None:
    """Without upload: every rule's package is on the server, else an OpaServerError naming it."""
    deployed = _deployed(connection, sorted(str(r.package) for r in catalog.rules.values() if r.source))
    for rule in sorted(catalog.rules.values(), key=lambda r: r.id):
        if rule.source and str(rule.package) not in deployed:
            raise OpaServerError(
                f"the OPA server at {connection.url} has no module of package {rule.package} (rule {rule.id}), and "
                "--opa-no-upload uploads none: deploy it in the server's bundle, or leave out --opa-no-upload")


class OpaRuleEngine:
    """The catalog's rules evaluated on an OPA server (a `RuleEngine`); made per thread by
    `engine.engine_for`, all of a process's sharing one connection and one upload."""

    def __init__(self, catalog: Catalog, backend: OpaBackend) -> None:
        self.catalog = catalog
        self._backend = backend
        self._connection = _connection(backend)
        self._packages = {str(r.package): r for r in catalog.document_rules()}
        self._prepared = _prepare(self._connection, catalog)
        self._queries: dict[frozenset[str] | None, str] = {}
        if backend.upload:
            self._query(None)

    def _query(self, rules: frozenset[str] | None) -> str:
        """The package of the aggregator of `rules` (all document rules when None), uploaded on
        first use. Named by its content, so that processes and clients with other rule sets
        never overwrite one another's."""
        if rules not in self._queries:
            wanted = [r for p, r in sorted(self._packages.items()) if rules is None or r.id in rules]
            digest = hashlib.sha256("\n".join(str(r.package) for r in wanted).encode()).hexdigest()[:16]
            package = f"{_AGGREGATOR_PACKAGE}.q_{digest}"
            text = aggregator_module(package, wanted)
            module = f"{ID_PREFIX}main/q_{digest}.rego"
            key = (self._connection.url, module)
            with self._connection.lock:
                if key not in _UPLOADED_AGGREGATORS:
                    try:
                        self._connection.put(module, text, module)
                    except PolicyError as exc:
                        raise PolicyError(f"the rules cannot be combined into one query: {exc.message}") from None
                    _UPLOADED_AGGREGATORS.add(key)
            self._queries[rules] = package
        return self._queries[rules]

    def _ask(self, package: str, name: str | None, input_data: dict[str, Any], must_be_defined: bool,
             rules: frozenset[str] | None = None) -> tuple[bool, Any]:
        """`data.<package>.<name>` for this input. An answer that cannot be undefined while our
        modules are there (the query module's `violations`, a `deny contains` set) but is, means
        the server lost them (an OPA without persistence restarted; someone deleted them): they
        are uploaded again, once, and asked again; without upload, or still undefined, that is an
        OpaServerError, never a pass."""
        defined, value = self._connection.query(package, name, input_data)
        if defined or not must_be_defined:
            return defined, value
        if self._backend.upload:
            self._upload_again()
            if name == "violations":
                package = self._query(rules)
            defined, value = self._connection.query(package, name, input_data)
            if defined:
                return defined, value
        raise OpaServerError(
            f"the OPA server at {self._connection.url} has no data.{package}{'.' + name if name else ''} (pipewarden's "
            f"module of package {package} is not there{' although it was just uploaded' if self._backend.upload else ''}): "
            + ("check that nothing else deletes modules under pipewarden/" if self._backend.upload else
               "deploy pipewarden's policies in the server's bundle, or leave out --opa-no-upload"))

    def _upload_again(self) -> None:
        """Forget what this process uploaded to the server, and upload this catalog again."""
        url = self._connection.url
        with self._connection.lock:
            for prepared in [k for k in _PREPARED if k[0] == url]:
                del _PREPARED[prepared]
            for aggregator in [k for k in _UPLOADED_AGGREGATORS if k[0] == url]:
                _UPLOADED_AGGREGATORS.discard(aggregator)
        self._prepared = _prepare(self._connection, self.catalog)
        self._queries.clear()

    def run(
        self, document_json: str, params_json: str, rules: frozenset[str] | None = None
    ) -> tuple[list[RuleViolation], list[RuleFailure]]:
        """As `RuleEngine.run`: one request for all rules; rule by rule when it fails."""
        input_data = {"pipeline": json.loads(document_json), "params": json.loads(params_json)}
        failures: list[RuleFailure] = []
        wanted = {p: r for p, r in self._packages.items() if rules is None or r.id in rules}
        raw: dict[str, Any] | None
        try:
            if self._backend.upload:
                _, value = self._ask(self._query(rules), "violations", input_data, True, rules)
                raw = value if isinstance(value, dict) else None
            else:
                _, value = self._ask(_RULES_PACKAGE, None, input_data, True)
                raw = self._denies(value)
        except _EvalFailed:
            raw = None
        if raw is None:
            raw, failures = self._rule_by_rule(wanted, input_data)
        return violations_of(raw, wanted), failures

    def _denies(self, tree: Any) -> dict[str, Any]:
        """Each document rule's `deny` from the value of `data.pipewarden.rules` (packages below
        it as nested objects): a complete `deny` that is not there is undefined (no finding); a
        package that is not there at all, or a `deny contains` set, is an OpaServerError (the
        server lost the module: without upload, nothing brings it back)."""
        found: dict[str, Any] = {}
        prefix = len(_RULES_PACKAGE) + 1
        for package, rule in self._packages.items():
            node: Any = tree
            for part in package[prefix:].split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict) or (rule.deny_always_defined and "deny" not in node):
                raise OpaServerError(
                    f"the OPA server at {self._connection.url} has no module of package {package} (rule {rule.id}) any "
                    "more, and --opa-no-upload uploads none: deploy it in the server's bundle, or leave out --opa-no-upload")
            found[package] = node.get("deny", [])
        return found

    def _rule_by_rule(
        self, wanted: dict[str, Rule], input_data: dict[str, Any]
    ) -> tuple[dict[str, Any], list[RuleFailure]]:
        """Each wanted rule's `deny` on its own: undefined reports nothing, a failure is a
        failure, the others report as usual."""
        found: dict[str, Any] = {}
        failures: list[RuleFailure] = []
        for package, rule in sorted(wanted.items()):
            try:
                defined, value = self._ask(package, "deny", input_data, rule.deny_always_defined)
            except _EvalFailed as exc:
                failures.append(self.failure(rule, str(exc)))
                continue
            found[package] = value if defined else []
        return found, failures

    def evaluate_fleet(self, rule: Rule, pipelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """As `RuleEngine.evaluate_fleet`, at `data.<package>.deny`."""
        try:
            defined, value = self._ask(str(rule.package), "deny", {"pipelines": pipelines}, rule.deny_always_defined)
        except _EvalFailed as exc:
            raise RuleFailed(self.failure(rule, str(exc))) from None
        if not defined or not isinstance(value, list):
            return []
        return [v for v in value if isinstance(v, dict)]

    def failure(self, rule: Rule, message: str) -> RuleFailure:
        """The failure of `rule` from OPA's error (`MODULE:LINE: WHAT`): at that line when the
        module is the rule's own, else at the rule's `deny` with the other place in the text."""
        text = _one_line(message)
        source = rule.source or "the Python core"
        match = _PLACE.match(text)
        if match is None:
            return RuleFailure(rule.id, source, rule.deny_line, text or "the OPA server gave no reason")
        file = self._prepared.paths.get(match["file"], match["file"])
        if file == source:
            return RuleFailure(rule.id, source, int(match["line"]), match["what"])
        return RuleFailure(rule.id, source, rule.deny_line, f"{match['what']} at {file}:{match['line']}")


