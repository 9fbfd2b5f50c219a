"""OPA's own evaluator for `pipewarden policy test --engine opa` (a `PolicyTestEngine`, engine.py).

The evaluator is OPA's Go code inside the optional `opa-golib-python-bindings` wheel
(`opa_bindings.OpaEngine`): the same semantics as an organisation's OPA server, in process, so
that a team can check that its rules mean on OPA what they mean on the embedded engine. The
wheel declares Python 3.14 but loads on 3.11: it is installed with
`pip install --ignore-requires-python --no-deps opa-golib-python-bindings==0.4.4` (`make test`
does). Without it, asking for this engine is a UsageError saying so.

OPA parses a module when it is added and compiles all of them together, lazily, at the first
query; a module can be neither removed nor cloned, so `copy` compiles the same texts into a new
engine. A module that does not parse is a PolicyError at `add_*`; modules that do not compile
together (an undefined function, a type error) are a PolicyError at the first `value_of`,
naming the file and line OPA gives.
"""

from __future__ import annotations

import re
from typing import Any

from pipewarden.errors import LoadError, PolicyError, UsageError
from pipewarden.load.yamlsafe import read_text_file
from pipewarden.policy.engine import UNDEFINED, EvaluationError

INSTALL = "pip install --ignore-requires-python --no-deps opa-golib-python-bindings==0.4.4"
# `FILE:LINE: CODE: WHAT`, how OPA names the place of an error (one per line when several, and
# after a prefix such as `bundle activation failed: 1 error occurred:` for a compile error).
_PLACE = re.compile(r"(?P<file>[^\s:]+):(?P<line>\d+): (?P<what>.*)$")
_COMPILE_CODES = ("prepare_error", "parse_error", "compile_error")


def _bindings() -> Any:
    try:
        import opa_bindings  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        raise UsageError(
            f"--engine opa needs OPA's evaluator, which is not installed: run `{INSTALL}` in pipewarden's environment "
            "(it declares Python 3.14 but loads on 3.11), or leave out --engine opa"
        ) from None
    return opa_bindings


def _first_place(message: str) -> tuple[str | None, int, str]:
    """(file, line, what) of the first `FILE:LINE: WHAT` line of an OPA error; the message as it
    is (first line) when none names a place."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    for line in lines:
        match = _PLACE.search(line)
        if match is not None:
            return match["file"], int(match["line"]), match["what"]
    return None, 1, lines[0] if lines else "OPA gave no reason"


class OpaTestEngine:
    """OPA's evaluator for the Rego unit tests (a `PolicyTestEngine`)."""

    def __init__(self, modules: dict[str, str] | None = None) -> None:
        self._opa = _bindings()
        self._modules: dict[str, str] = {}
        # Package -> its document (the values of its rules), None when it failed as a whole.
        # OPA prepares each distinct query once, about 130 ms here: asking for a package's
        # document once serves all its tests (about 20 preparations for the built-in tests, not
        # 170); a package where some test fails with an error is then asked rule by rule.
        self._packages: dict[str, dict[str, Any] | None] = {}
        self._engine = self._opa.OpaEngine()
        for name, text in (modules or {}).items():
            self.add_module(name, text)

    def add_file(self, path: str) -> None:
        try:
            text = read_text_file(path)
        except LoadError as exc:
            raise PolicyError(f"cannot read the policy file: {exc.message}", path, exc.line or 1) from None
        self.add_module(path, text)

    def add_module(self, name: str, text: str) -> None:
        try:
            self._engine.add_policy(name, text)
        except self._opa.OpaError as exc:
            file, line, what = _first_place(exc.message)
            raise PolicyError(f"the policy does not compile: {what}", file or name, line) from None
        self._modules[name] = text
        self._packages.clear()

    def copy(self) -> OpaTestEngine:
        return OpaTestEngine(self._modules)

    def value_of(self, ref: str) -> Any:
        path = ref.removeprefix("data.")
        package, _, name = path.rpartition(".")
        if package and name.isidentifier():
            if package not in self._packages:
                try:
                    document = self._engine.eval_document(package)
                except self._opa.OpaError:
                    document = None  # undefined or failed: each rule is asked on its own below
                self._packages[package] = document if isinstance(document, dict) else None
            found = self._packages[package]
            if found is not None:
                return found.get(name, UNDEFINED)
        try:
            return self._engine.eval_document(path)
        except self._opa.OpaUndefinedError:
            return UNDEFINED
        except self._opa.OpaError as exc:
            file, line, what = _first_place(exc.message)
            if exc.code in _COMPILE_CODES:
                raise PolicyError(f"the policies do not compile together on OPA: {what}", file, line) from None
            raise EvaluationError(f"{file}:{line}: {what}" if file else what) from None

    def close(self) -> None:
        self._engine.close()
