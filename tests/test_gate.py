"""evaluation/gate.py: one pipeline document checked under an org config, as the release engine's
policy gate and the decision API will call it. Its findings are `check`'s for that file, finding
for finding (exceptions, unknown-team, valid-definition, policy-error, fleet rules against the
other pipelines given), and it may be called from many threads at once."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import good_pipeline
from pipewarden.errors import ConfigError
from pipewarden.evaluation.context import build_context
from pipewarden.evaluation.gate import GateResult, check_document, check_document_in
from pipewarden.lint.check import check_paths
from pipewarden.load.discover import discover
from pipewarden.model.finding import Finding

REPO = Path(__file__).resolve().parent.parent
ORG = str(REPO / "org-configs" / "example")
ORG_POLICIES = (str(REPO / "org-configs" / "example" / "policies"),)
NOW = dt.datetime(2026, 11, 26, 10, tzinfo=dt.UTC)
EXAMPLES = discover([str(REPO / "examples")])

RULE_HEAD = """# METADATA
# title: A rule that fails while it runs
# custom:
#   id: {id}
#   level: warn
package pipewarden.{kind}.{package}

import rego.v1

"""
# Fails on every pipeline with stages: a division by zero inside the rule.
FAILING_RULE = RULE_HEAD.format(id="always-fails", kind="rules", package="always_fails") + (
    'deny contains {"msg": "m", "path": ""} if 1 / (count(input.pipeline.stages) - count(input.pipeline.stages)) > 0\n'
)
# Fails on a pipeline whose name is not a number (all of them): to_number of a name.
FAILING_FLEET_RULE = RULE_HEAD.format(id="numbered", kind="fleet", package="numbered") + """\
deny contains v if {
\tsome p in input.pipelines
\tto_number(p.name) > 0
\tv := {"file": p.file, "msg": "numbered", "path": "metadata.name"}
}
"""


def failing_policies(root: Path) -> tuple[str, ...]:
    folder = root / "policies"
    for name, text in (("always-fails", FAILING_RULE), ("numbered", FAILING_FLEET_RULE)):
        (folder / name).mkdir(parents=True)
        (folder / name / f"{name.replace('-', '_')}.rego").write_text(text)
    return (str(folder),)


def as_rows(findings: Sequence[Finding]) -> list[dict[str, object]]:
    """Everything a finding says, in JSON (with the rule a policy-error names)."""
    return [{**f.to_json(), "failed_rule": f.failed_rule} for f in findings]


def gate(file: str, org: str | None, policies: tuple[str, ...], others: Sequence[str] = ()) -> GateResult:
    return check_document(Path(file).read_bytes(), file, org_config=org, policies=policies, now=NOW,
                          others={o: Path(o).read_bytes() for o in others})


def test_the_examples_cover_what_the_gate_must_get_right() -> None:
    """Exceptions, unknown-team, valid-definition, both levels, custom and fleet rules."""
    findings = check_paths(EXAMPLES, build_context(ORG, ORG_POLICIES, NOW)).findings
    assert {"unknown-team", "valid-definition", "single-release-process", "no-friday-afternoon"} <= {
        f.rule for f in findings
    }
    assert any(f.excepted for f in findings) and {f.level for f in findings} == {"warn", "enforce"}


@pytest.mark.parametrize("file", EXAMPLES, ids=[Path(f).parent.name for f in EXAMPLES])
def test_a_document_alone_gets_what_check_gives_that_file(file: str) -> None:
    expected = check_paths([file], build_context(ORG, ORG_POLICIES, NOW)).findings
    result = gate(file, ORG, ORG_POLICIES)
    assert as_rows(result.findings) == as_rows(expected)
    assert result.blocking == tuple(f for f in expected if f.level == "enforce" and not f.excepted)
    assert result.allowed == (not result.blocking)
    assert result.pipeline.file == file


@pytest.mark.parametrize("file", EXAMPLES, ids=[Path(f).parent.name for f in EXAMPLES])
def test_with_the_other_pipelines_the_fleet_rules_see_the_fleet(file: str) -> None:
    """`others` are what the fleet rules compare the document with (single-release-process
    finds the examples' clash); the document's own findings are check's on the whole fleet."""
    whole = check_paths(EXAMPLES, build_context(ORG, ORG_POLICIES, NOW)).findings
    result = gate(file, ORG, ORG_POLICIES, [f for f in EXAMPLES if f != file])
    assert as_rows(result.findings) == as_rows([f for f in whole if f.file == file])


def test_rules_that_fail_while_they_run_give_the_same_policy_errors(tmp_path: Path) -> None:
    policies = failing_policies(tmp_path)
    whole = check_paths(EXAMPLES, build_context(None, policies, NOW)).findings
    errors = [f for f in whole if f.rule == "policy-error"]
    assert {f.failed_rule for f in errors} == {"always-fails", "numbered"}
    for file in EXAMPLES:
        alone = check_paths([file], build_context(None, policies, NOW)).findings
        assert as_rows(gate(file, None, policies).findings) == as_rows(alone)
        with_fleet = gate(file, None, policies, [f for f in EXAMPLES if f != file])
        assert as_rows(with_fleet.findings) == as_rows([f for f in whole if f.file == file])
        if any(f.file == file and f.rule == "policy-error" for f in whole):
            assert not with_fleet.allowed  # policy-error is always enforce, never excepted


def test_text_bytes_and_json_give_one_answer() -> None:
    """The decision API receives the document as JSON: JSON is YAML, and only lines differ."""
    file = str(REPO / "examples" / "checkout-service" / "pipeline.yaml")
    data = Path(file).read_bytes()
    from_bytes = check_document(data, "pipeline.yaml", org_config=ORG, now=NOW)
    from_text = check_document(data.decode(), "pipeline.yaml", org_config=ORG, now=NOW)
    assert as_rows(from_bytes.findings) == as_rows(from_text.findings)
    import yaml

    document = yaml.safe_load(data)
    from_json = check_document(json.dumps(document), "pipeline.yaml", org_config=ORG, now=NOW)
    assert [(f.rule, f.path, f.message, f.level) for f in from_json.findings] == [
        (f.rule, f.path, f.message, f.level) for f in from_bytes.findings
    ]


def test_a_document_that_does_not_load_is_blocked_not_an_error() -> None:
    for source in (b"stages: [unclosed\n", b"", "\ud800 not UTF-8", b"\xff\xfe\x00bad"):
        result = check_document(source, "p.yaml", org_config=None, now=NOW)
        assert [f.rule for f in result.findings] == ["valid-definition"]
        assert not result.allowed and result.blocking == result.findings and not result.pipeline.valid


def test_a_clean_document_is_allowed_and_warnings_do_not_block() -> None:
    result = check_document(good_pipeline(), "p.yaml", org_config=None, now=NOW)
    assert result.allowed and result.blocking == ()
    warned = check_document(good_pipeline(("duration: 60m", "duration: 30m")), "p.yaml", org_config=None, now=NOW)
    assert warned.findings and {f.level for f in warned.findings} == {"warn"} and warned.allowed


def test_the_time_decides_levels_and_exceptions() -> None:
    """A schedule (identity-api's full-automation) and an exception's expiry (legacy-billing's
    auto-rollback) are read at `now`, as check reads them at --now."""
    for file in (str(REPO / "examples" / "identity-api" / "pipeline.yaml"),
                 str(REPO / "examples" / "legacy-billing" / ".pipewarden" / "pipeline.yaml")):
        answers = []
        for now in (NOW, dt.datetime(2031, 1, 1, tzinfo=dt.UTC)):
            expected = check_paths([file], build_context(ORG, (), now)).findings
            result = check_document(Path(file).read_bytes(), file, org_config=ORG, now=now)
            assert as_rows(result.findings) == as_rows(expected)
            answers.append(as_rows(result.findings))
        assert answers[0] != answers[1]


def test_configuration_errors_are_raised_as_for_check(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        check_document(good_pipeline(), "p.yaml", org_config=str(tmp_path / "missing"), now=NOW)
    with pytest.raises(ValueError, match="distinct name"):
        check_document(good_pipeline(), "p.yaml", org_config=None, now=NOW, others={"p.yaml": good_pipeline()})


def test_many_threads_at_once_get_the_same_answers(tmp_path: Path) -> None:
    """Temporal activities and the decision API call the gate from threads of their own: each
    thread gets its own engine, and every answer equals the one computed alone."""
    policies = failing_policies(tmp_path)
    cases = [(file, org, pol) for file in EXAMPLES for org, pol in ((ORG, ORG_POLICIES), (None, policies))]
    expected = {case: as_rows(gate(*case).findings) for case in cases}
    threads: set[int] = set()

    def one(case: tuple[str, str | None, tuple[str, ...]]) -> list[dict[str, object]]:
        threads.add(threading.get_ident())
        return as_rows(gate(*case).findings)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, cases * 4))
    assert answers == [expected[case] for case in cases * 4]
    assert len(threads) > 1


def test_a_shared_context_may_serve_many_threads() -> None:
    context = build_context(ORG, ORG_POLICIES, NOW)
    sources = {file: Path(file).read_bytes() for file in EXAMPLES}
    expected = {file: as_rows(check_document_in(data, file, context).findings) for file, data in sources.items()}
    fresh = build_context(ORG, ORG_POLICIES, NOW)  # its memos are filled by the threads themselves
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda f: as_rows(check_document_in(sources[f], f, fresh).findings), EXAMPLES * 4))
    assert answers == [expected[file] for file in EXAMPLES * 4]
