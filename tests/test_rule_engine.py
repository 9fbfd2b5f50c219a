"""The RuleEngine protocol (issue 12, item 5): callers get an engine through `engine_for` only, so
that another backend (an OPA server, issue 16) can be added beside regorus without touching them."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW, run_cli
from pipewarden.errors import PolicyError
from pipewarden.policy import engine as engines
from pipewarden.policy.catalog import Catalog, load_catalog
from pipewarden.policy.engine import (
    EvaluationError,
    RuleEngine,
    RuleFailure,
    RuleViolation,
    engine_for,
    policy_test_engine,
)
from pipewarden.policy.rule import Rule
from pipewarden.policy.testing import run_policy_tests

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "pipewarden"
# The modules that may name the embedded engine: its backend, and the one place picking it.
BACKEND = {"pipewarden.policy.regorus", "pipewarden.policy.engine"}


def _module(path: Path) -> str:
    return ".".join(("pipewarden", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_caller_names_the_embedded_engine() -> None:
    for path in sorted(SRC.rglob("*.py")):
        if _module(path) in BACKEND:
            continue
        named = {n for n in _imports(path) if n == "regorus" or n.startswith(("regorus.", "pipewarden.policy.regorus"))}
        assert not named, f"{path} imports {named}: get an engine through policy.engine.engine_for"


def test_the_evaluation_accessor_hands_out_engine_for() -> None:
    """`rule_engine(catalog)` of evaluation/ (wherever the split put it) is `engine_for`."""
    found = [p for p in sorted((SRC / "evaluation").glob("*.py")) if "def rule_engine(" in p.read_text()]
    assert len(found) == 1
    accessor = importlib.import_module(_module(found[0])).rule_engine
    catalog = load_catalog(())
    assert accessor(catalog) is engine_for(catalog)


def test_engine_for_gives_a_rule_engine() -> None:
    catalog = load_catalog(())
    engine = engine_for(catalog)
    assert isinstance(engine, RuleEngine)
    assert engine.catalog is catalog


def test_a_rule_that_does_not_compile_is_an_error_when_the_engine_is_made(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "bad.rego").write_text(
        "# METADATA\n# custom: {id: bad}\npackage pipewarden.rules.bad\nimport rego.v1\ndeny contains x if {\n"
    )
    catalog = load_catalog((str(tmp_path),))
    with pytest.raises(PolicyError) as error:
        engine_for(catalog)
    assert error.value.file == str(tmp_path / "bad" / "bad.rego") and "does not compile" in error.value.message


class FakeBackend:
    """Another backend, as an OPA server's would be: it only has to answer the protocol."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self.documents = 0

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def run(
        self, document_json: str, params_json: str, rules: frozenset[str] | None = None
    ) -> tuple[list[RuleViolation], list[RuleFailure]]:
        self.documents += 1
        name = json.loads(document_json)["metadata"]["name"]
        assert "canary-first" in json.loads(params_json)
        return [("canary-first", "stages[0]", f"{name}: said the other backend")], []

    def evaluate_fleet(self, rule: Rule, pipelines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"file": p["file"], "msg": "fleet, said the other backend", "path": "metadata.name"} for p in pipelines[:1]]


def test_another_backend_serves_every_caller_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeBackend] = []

    def new_engine(catalog: Catalog) -> RuleEngine:
        made.append(FakeBackend(catalog))
        return made[-1]

    monkeypatch.setattr(engines, "_new_engine", new_engine)
    monkeypatch.setattr(engines, "_LOCAL", engines._Local())  # this thread's engines, afresh
    for repo in ("a", "b"):  # the same pipeline twice: a clash for the fleet rule to be asked about
        (tmp_path / repo).mkdir()
        (tmp_path / repo / "pipeline.yaml").write_text((ROOT / "tests" / "data" / "good-pipeline.yaml").read_text())
    done = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW, "--no-cache")
    found = [(f["file"], f["rule"], f["message"]) for f in done.json()["findings"]]
    assert sorted(found) == sorted([
        (str(tmp_path / "a" / "pipeline.yaml"), "canary-first", "checkout-service: said the other backend"),
        (str(tmp_path / "b" / "pipeline.yaml"), "canary-first", "checkout-service: said the other backend"),
        (str(tmp_path / "a" / "pipeline.yaml"), "single-release-process", "fleet, said the other backend"),
    ])
    assert len(made) == 1 and made[0].documents == 2  # one engine for the run, made once


def test_policy_tests_run_through_the_policy_test_engine(tmp_path: Path) -> None:
    engine = policy_test_engine()
    rule = tmp_path / "t_test.rego"
    rule.write_text("package acme.t_test\n\nimport rego.v1\n\ntest_ok if 1 == 1\n\nboom := 1 / 0\n")
    engine.add_file(str(rule))
    assert engine.value_of("data.acme.t_test.test_ok") is True
    with pytest.raises(EvaluationError, match="divide by zero"):
        engine.value_of("data.acme.t_test.boom")
    results = run_policy_tests([str(ROOT / "org-configs" / "example" / "policies")])
    assert results and all(r.passed for r in results)
