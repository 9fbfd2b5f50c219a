"""Rule engines: the protocol every backend implements, and `engine_for`, the one way to get one.

Callers (the evaluation core, the release engine's policy gate) name only what is here: the
embedded regorus engine (regorus.py) is the default backend; an organisation's OPA server
(opa.py, issue 16) is the other, chosen for the whole process with `use_backend(OpaBackend(...))`
before anything evaluates (the CLI does, for `--opa-url`), so that no caller changes.

Threads. A regorus engine must stay on the thread that made it: its Python class is
"unsendable", and using it, dropping it or even calling its `clone()` on another thread fails
(pyo3 checks the thread on every call; measured with regorus 0.9.1). A prototype compiled once
and cloned for each thread is therefore not possible with this binding. Instead each thread
compiles its own engine, once per catalog, from the texts the catalog keeps (no file is read
again): about 1.4 ms for the built-in rules, what evaluating two or three documents takes.
`engine_for` keeps them per thread, keyed by the catalog's content fingerprint, so an engine is
made once per thread (and per process: a forked worker makes its own, as it always did), never
per document, and an edited rule file (a new catalog, see `load_catalog`) gets a new engine.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pipewarden.policy.catalog import Catalog
from pipewarden.policy.rule import Rule

# (rule id, path, message): one violation of a document rule, as an engine reports it.
RuleViolation = tuple[str, str, str]


@dataclass(frozen=True)
class RuleFailure:
    """A rule that failed while it ran on one input (a builtin error, conflicting values...):
    the rule, its file and line, and the error (with the place, when that is another file)."""

    rule: str
    file: str
    line: int
    error: str

    def message(self) -> str:
        return f"rule '{self.rule}' failed while it ran ({self.file}:{self.line}): {self.error}"


class RuleFailed(Exception):
    """A fleet rule failed on the input it was given."""

    def __init__(self, failure: RuleFailure) -> None:
        super().__init__(failure.message())
        self.failure = failure


class EvaluationError(Exception):
    """A query the engine could not answer; the text is the engine's own error."""


@runtime_checkable
class RuleEngine(Protocol):
    """What callers ask of a rule engine. Compiling happens when it is made: a rule that does not
    compile is a PolicyError then, naming the file and line."""

    @property
    def catalog(self) -> Catalog:
        """The catalog whose rules it evaluates."""
        ...

    def run(
        self, document_json: str, params_json: str, rules: frozenset[str] | None = None
    ) -> tuple[list[RuleViolation], list[RuleFailure]]:
        """The violations of the document rules in `rules` (all document rules when None) on one
        pipeline document, and the rules that failed while they ran on it (the others still
        report). `document_json` is the pipeline (`input.pipeline`), `params_json` an object of
        each rule's params by rule id (`input.params`), both JSON text. A `deny` that is not a
        set of objects is a PolicyError naming the rule."""
        ...

    def evaluate_fleet(self, rule: Rule, pipelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The `deny` objects of a fleet rule over summaries of pipelines (`input.pipelines`);
        RuleFailed when the rule fails while it runs on them."""
        ...


class Undefined:
    """The value of a rule that is undefined (a test whose body does not hold)."""

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = Undefined()


class PolicyTestEngine(Protocol):
    """What `pipewarden policy test` asks of an engine: load Rego files, read a rule's value."""

    def add_file(self, path: str) -> None:
        """Compile one Rego file (rules, libraries or tests); PolicyError when it does not."""
        ...

    def add_module(self, name: str, text: str) -> None:
        """Compile Rego text under a name (the probes that explain a failing test)."""
        ...

    def copy(self) -> PolicyTestEngine:
        """An engine with the same modules, to which modules can be added without changing this one."""
        ...

    def value_of(self, ref: str) -> Any:
        """The JSON value of a rule (`data.pkg.test_x`), `UNDEFINED` when it has none;
        EvaluationError when it fails, its text `FILE:LINE: WHAT` when the engine says where."""
        ...


@dataclass(frozen=True)
class OpaBackend:
    """Evaluate on an OPA server (`--opa-url`, docs/opa.md) instead of the embedded engine.

    `url` is the server's base URL (`http(s)://host[:port][/prefix]`, the `/v1` API below it);
    `token` a bearer token or None; `upload` False uses the modules the server already has (a
    bundle) instead of uploading the catalog's under `pipewarden/`; at most `concurrency`
    requests of this process are in flight at once (they share that many kept-alive
    connections); `timeout` is seconds per request (connecting, and waiting for the answer).
    """

    url: str
    token: str | None = None
    upload: bool = True
    concurrency: int = 8
    timeout: float = 60.0


# The backend of this process: None is the embedded engine. Set by `use_backend` only.
_BACKEND: OpaBackend | None = None
_GENERATION = 0  # bumped by every `use_backend`: engines made for an earlier backend are dropped


def use_backend(backend: OpaBackend | None) -> None:
    """Evaluate with `backend` from now on, in every thread of this process (and in the workers
    it forks): None is the embedded engine. Engines made before are not used again."""
    global _BACKEND, _GENERATION
    _BACKEND = backend
    _GENERATION += 1


def current_backend() -> OpaBackend | None:
    """The backend `use_backend` set (None: the embedded engine)."""
    return _BACKEND


def check_backend() -> None:
    """Fail now (a PipewardenError naming the server and what to do) when the backend cannot
    serve: an OPA server that cannot be reached, refuses the token, or (with `upload` False) has
    no modules. Nothing to check for the embedded engine."""
    if _BACKEND is not None:
        from pipewarden.policy.opa import check_server

        check_server(_BACKEND)


def _new_engine(catalog: Catalog) -> RuleEngine:
    """A compiled engine for `catalog` on this thread (the one place that picks a backend)."""
    backend = _BACKEND
    if backend is not None:
        from pipewarden.policy.opa import OpaRuleEngine

        return OpaRuleEngine(catalog, backend)
    from pipewarden.policy.regorus import RegorusEngine

    return RegorusEngine(catalog)


POLICY_TEST_ENGINES = ("regorus", "opa")


def policy_test_engine(kind: str = "regorus") -> PolicyTestEngine:
    """An empty engine for the Rego unit tests of `pipewarden policy test`: the embedded one
    (`regorus`), or OPA's own evaluator (`opa`, from the optional `opa-golib-python-bindings`;
    a UsageError saying how to install it when it is not)."""
    if kind == "opa":
        from pipewarden.policy.opagolib import OpaTestEngine

        return OpaTestEngine()
    from pipewarden.policy.regorus import RegorusTestEngine

    return RegorusTestEngine()


def rego_syntax_tree(name: str, text: str) -> dict[str, Any] | None:
    """The syntax tree of one Rego module (see regoast.py), None when it does not parse. Only
    the embedded engine's parser: what is read from the tree holds whichever engine evaluates."""
    from pipewarden.policy.regorus import syntax_tree

    return syntax_tree(name, text)


_PER_THREAD = 4  # catalogs a thread keeps an engine for (a long-running thread sees edits)


class _Engines:
    """The engines one thread made, by catalog fingerprint, the most recently used last; all
    made for the backend of `generation`."""

    def __init__(self) -> None:
        self.last: tuple[Catalog, RuleEngine] | None = None
        self.by_key: OrderedDict[str, tuple[Catalog, RuleEngine]] = OrderedDict()
        self.generation = _GENERATION

    def get(self, catalog: Catalog) -> RuleEngine:
        # A catalog built by hand has no fingerprint: keyed by identity then (the entry holds
        # the catalog, so its id cannot be reused while the entry lives).
        key = catalog.fingerprint or f"object {id(catalog)}"
        entry = self.by_key.get(key)
        if entry is None:
            entry = (catalog, _new_engine(catalog))
            self.by_key[key] = entry
            while len(self.by_key) > _PER_THREAD:
                self.by_key.popitem(last=False)  # dropped here, on the thread that made it
        else:
            self.by_key.move_to_end(key)
        self.last = (catalog, entry[1])
        return entry[1]

    def clear(self) -> None:
        self.last = None
        self.by_key.clear()


_REGISTRY: dict[int, _Engines] = {}
_ORPHANS: list[_Engines] = []  # a forked child's engines of threads it does not have


class _Owner:
    """Lives in a thread's local storage: when the thread ends, it is dropped there, on that
    thread, and lets the thread's engines go with it.

    The engines are also held by `_REGISTRY`, because local storage can be dropped on another
    thread too: in a process forked while other threads held engines, the child clears those
    threads' storage on its one thread, where dropping an engine fails with an "unsendable"
    error. There, the registry keeps them (never used, never dropped) instead.
    """

    def __init__(self, engines: _Engines) -> None:
        self.ident = threading.get_ident()
        _REGISTRY[self.ident] = engines

    def __del__(
        self, _get_ident: Any = threading.get_ident, _registry: dict[int, _Engines] = _REGISTRY
    ) -> None:
        # (the names are bound here: at interpreter exit, module globals may be gone already)
        if _get_ident() == self.ident:
            _registry.pop(self.ident, None)


class _Local(threading.local):
    engines: _Engines | None = None
    owner: _Owner | None = None


_LOCAL = _Local()


def engine_for(catalog: Catalog) -> RuleEngine:
    """This thread's engine for `catalog`, compiled on first use (PolicyError when a rule does
    not compile). Cheap to call for every document: the same catalog object as last time is one
    identity check."""
    engines = _LOCAL.engines
    if engines is None:
        engines = _Engines()
        _LOCAL.owner = _Owner(engines)
        _LOCAL.engines = engines
    if engines.generation != _GENERATION:  # another backend since: its engines are not used again
        engines.clear()
        engines.generation = _GENERATION
    last = engines.last
    if last is not None and last[0] is catalog:
        return last[1]
    return engines.get(catalog)


def _after_fork_in_child() -> None:
    """A forked child makes its own engines, as a worker process always did; those of threads
    that did not follow it into the child are kept, never dropped (see `_Owner`)."""
    own = _REGISTRY.pop(threading.get_ident(), None)
    _ORPHANS.extend(_REGISTRY.values())
    _REGISTRY.clear()
    if own is not None:
        own.clear()  # dropped on this thread, which made them (the child's only thread)
        _REGISTRY[threading.get_ident()] = own


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
