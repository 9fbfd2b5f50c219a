"""Issue 15 item 7: a rule that reads a parameter its METADATA does not declare is an error when
the rule loads, naming the rule file, the line and the declared names; every built-in rule passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import GOOD_PIPELINE, run_cli
from pipewarden.policy.catalog import builtin_policies_dir, load_catalog, rule_files
from pipewarden.policy.paramcheck import param_problems

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_POLICIES = ROOT / "org-configs" / "example" / "policies"

HEAD = """# METADATA
# title: Prod runs smoke tests
# custom:
#   id: prod-smoke-tests
#   level: warn
#   params:
#     prod-smoke-tests: true
#     min_tests: 1
#   params_schema:
#     type: object
#     additionalProperties: false
#     properties:
#       prod-smoke-tests: {type: boolean}
#       min_tests: {type: integer}
#       max_tests: {type: integer}
package pipewarden.rules.prod_smoke_tests

import rego.v1

"""
# The line of the first line of the body in a rule written as HEAD + body.
FIRST = HEAD.count("\n") + 1


def _rule_folder(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "acme-policies" / "prod-smoke-tests"
    folder.mkdir(parents=True)
    (folder / "prod_smoke_tests.rego").write_text(HEAD + body)
    return folder.parent


def test_every_built_in_and_example_rule_reads_only_declared_params() -> None:
    catalog = load_catalog((str(EXAMPLE_POLICIES),))
    checked = 0
    for rule in catalog.rules.values():
        if rule.source is None:
            continue
        assert param_problems(rule, Path(rule.source).read_text(encoding="utf-8-sig")) == [], rule.id
        checked += 1
    # Every rule file of the built-in folder (not the library) and the example org's rule.
    assert checked == len(rule_files(builtin_policies_dir())) - 1 + 1


@pytest.mark.parametrize(
    ("body", "line", "said"),
    [
        # The case: the parameter spelt with underscores, declared with dashes.
        (('deny contains v if {\n\tp := input.params["prod-smoke-tests"]\n\tp["prod_smoke_tests"]\n'
         '\tv := {"msg": "x", "path": ""}\n}\n'), FIRST + 2,
         ("reads the parameter 'prod_smoke_tests' (input.params[\"prod-smoke-tests\"][\"prod_smoke_tests\"]), "
         "which its METADATA does not declare (declared: 'prod-smoke-tests', 'min_tests', 'max_tests'; "
         "did you mean 'prod-smoke-tests'?)")),
        # Dotted access through a rule of the module.
        (('_params := input.params["prod-smoke-tests"]\n\ndeny contains v if {\n\tcount(input.pipeline.stages) < _params.min_test\n'
         '\tv := {"msg": "x", "path": ""}\n}\n'), FIRST + 3,
         "reads the parameter 'min_test' (input.params[\"prod-smoke-tests\"].min_test)"),
        # Directly, and with object.get.
        ('deny contains v if {\n\tinput.params["prod-smoke-tests"].maximum_tests > 0\n\tv := {"msg": "x", "path": ""}\n}\n',
         FIRST + 1, "'maximum_tests'"),
        (('deny contains v if {\n\tobject.get(input.params["prod-smoke-tests"], "smoke", false)\n'
         '\tv := {"msg": "x", "path": ""}\n}\n'), FIRST + 1, "'smoke'"),
        # The rule's own key spelt with underscores.
        ('deny contains v if {\n\tinput.params["prod_smoke_tests"].min_tests > 0\n\tv := {"msg": "x", "path": ""}\n}\n',
         FIRST + 1, ("reads input.params[\"prod_smoke_tests\"], but a rule's parameters are under its own id, "
         "with dashes: read input.params[\"prod-smoke-tests\"]")),
    ],
    ids=["bracket-underscores", "dotted-alias", "direct", "object-get", "wrong-rule-key"],
)
def test_an_undeclared_read_stops_every_command(tmp_path: Path, body: str, line: int, said: str) -> None:
    policies = _rule_folder(tmp_path, body)
    rule_file = policies / "prod-smoke-tests" / "prod_smoke_tests.rego"
    (tmp_path / "pipeline.yaml").write_text(GOOD_PIPELINE)
    for args in (["check", str(tmp_path / "pipeline.yaml")], ["rules", "list"], ["policy", "test"]):
        result = run_cli(*args, "--policies", str(policies)) if args[0] != "policy" else run_cli(*args, str(policies))
        assert result.exit_code == 2, (args, result.stdout, result.stderr)
        [message] = result.stderr.strip().splitlines()
        assert message.startswith(f"pipewarden: error: {rule_file}:{line}: rule 'prod-smoke-tests' "), message
        assert said in message, message
        assert "Traceback" not in result.stderr


def test_declared_reads_pass_and_the_rule_runs(tmp_path: Path) -> None:
    body = ('_params := input.params["prod-smoke-tests"]\n\n'
            'deny contains v if {\n\t_params["prod-smoke-tests"]\n\tp := input.params["prod-smoke-tests"]\n'
            '\tcount(input.pipeline.stages) > p.min_tests\n\tobject.get(_params, "max_tests", 10) > 0\n'
            '\tv := {"msg": "smoke", "path": "stages"}\n}\n')
    policies = _rule_folder(tmp_path, body)
    (tmp_path / "pipeline.yaml").write_text(GOOD_PIPELINE)
    result = run_cli("check", str(tmp_path / "pipeline.yaml"), "--policies", str(policies), "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [f["rule"] for f in result.json()["findings"]] == ["prod-smoke-tests"]


def test_a_rule_with_no_params_names_none(tmp_path: Path) -> None:
    folder = tmp_path / "no-params"
    folder.mkdir()
    (folder / "no_params.rego").write_text(
        "# METADATA\n# custom: {id: no-params, params: {}}\npackage pipewarden.rules.no_params\n\nimport rego.v1\n\n"
        'deny contains v if {\n\tinput.params["no-params"].limit > 1\n\tv := {"msg": "x", "path": ""}\n}\n'
    )
    result = run_cli("rules", "list", "--policies", str(tmp_path))
    assert result.exit_code == 2
    assert f"{folder / 'no_params.rego'}:8: " in result.stderr
    assert "(it declares none (custom.params is empty))" in result.stderr


def test_a_fleet_rule_reading_params_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "one-name"
    folder.mkdir()
    (folder / "one_name.rego").write_text(
        "# METADATA\n# custom: {id: one-name}\npackage pipewarden.fleet.one_name\n\nimport rego.v1\n\n"
        'deny contains v if {\n\tsome p in input.pipelines\n\tinput.params["one-name"].strict\n'
        '\tv := {"file": p.file, "msg": "x", "path": ""}\n}\n'
    )
    result = run_cli("rules", "list", "--policies", str(tmp_path))
    assert result.exit_code == 2
    assert f"{folder / 'one_name.rego'}:9: fleet rule 'one-name' reads input.params" in result.stderr
