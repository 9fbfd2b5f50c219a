"""The optional fields pipeline.md and org-config.md added for the release engine are accepted by
both schema paths (the fastjsonschema gate and jsonschema), by `check`, and read by the typed
view; wrong values are still rejected with their line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from conftest import NOW, good_pipeline, run_cli
from pipewarden.errors import ConfigError
from pipewarden.load.pipeline import load_pipeline_bytes
from pipewarden.load.validate import is_valid, schema_issues
from pipewarden.model.view import pipeline_view
from pipewarden.orgs.tree import load_org_tree
from pipewarden.policy.catalog import load_catalog
from pipewarden.schemas import load_schema

# Every new pipeline field, once: build.timeout and build.sbom, a timeout on a build test and on
# a stage test, stages[].deploy.timeout (block and flow mappings) and stages[].bake.deadline.
NEW_FIELDS = (
    ("  artifact: dist/ ", "  timeout: 45m\n  sbom: dist/sbom.cdx.json\n  artifact: dist/ "),
    ('- {name: unit, type: unit, command: "make test"}', '- {name: unit, type: unit, command: "make test", timeout: 5m}'),
    ("      min_healthy: 50%  ", "      timeout: 2m\n      min_healthy: 50%  "),
    ('- {name: load, type: load, command: "make load"}', '- {name: load, type: load, command: "make load", timeout: 1h}'),
    ("min_healthy: 66%}", "min_healthy: 66%, timeout: 90s}"),
    ("      duration: 60m ", "      deadline: 2h\n      duration: 60m "),
)


def _document(text: str) -> dict[str, Any]:
    loaded = load_pipeline_bytes("pipeline.yaml", text.encode())
    assert loaded.document is not None
    document: dict[str, Any] = loaded.document
    return document


def test_both_schema_paths_accept_the_new_pipeline_fields() -> None:
    document = _document(good_pipeline(*NEW_FIELDS))
    assert is_valid("pipeline", document)  # the fastjsonschema gate
    assert list(jsonschema.Draft7Validator(load_schema("pipeline")).iter_errors(document)) == []
    assert schema_issues("pipeline", document) == []
    assert load_pipeline_bytes("pipeline.yaml", good_pipeline(*NEW_FIELDS).encode()).valid


def test_check_finds_no_valid_definition_problem_with_the_new_fields(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(good_pipeline(*NEW_FIELDS))
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    assert result.json()["findings"] == []


def test_the_view_reads_the_new_fields() -> None:
    view = pipeline_view(_document(good_pipeline(*NEW_FIELDS)))
    assert (view.build.timeout_seconds, view.build.sbom) == (2700, "dist/sbom.cdx.json")
    # The build test with its own timeout keeps it; the other has the build's.
    assert [t.timeout_seconds for t in view.build.tests] == [300, 2700]
    beta, gamma, canary, wave1, _ = view.stages
    assert beta.deploy_timeout_seconds == 120 and canary.deploy_timeout_seconds == 90
    assert gamma.deploy_timeout_seconds == 600  # the default
    assert [t.timeout_seconds for t in gamma.tests] == [3600, 1800]
    assert (canary.bake_seconds, canary.bake_deadline_seconds) == (3600, 7200)
    assert wave1.bake_deadline_seconds is None


@pytest.mark.parametrize(("replacement", "line", "message"), [
    (("  artifact: dist/ ", "  timeout: 30\n  artifact: dist/ "), 11, "'build.timeout' must be of type string"),
    (("  artifact: dist/ ", "  timeout: 1.5h\n  artifact: dist/ "), 11, "a duration such as 90s"),
    (("  artifact: dist/ ", "  sbom: ''\n  artifact: dist/ "), 11, "'build.sbom'"),
    (('- {name: unit, type: unit, command: "make test"}', '- {name: unit, type: unit, command: "make test", timeout: soon}'),
     13, "'build.tests[0].timeout' is 'soon'"),
    (("      min_healthy: 50%  ", "      timeout: 10\n      min_healthy: 50%  "), 43, "'stages[0].deploy.timeout'"),
    (("      duration: 60m ", "      deadline: tomorrow\n      duration: 60m "), 63, "'stages[2].bake.deadline'"),
    (("      duration: 60m ", "      deadlines: 2h\n      duration: 60m "), 63, "unknown key 'deadlines'"),
])
def test_bad_values_of_the_new_fields_are_invalid(replacement: tuple[str, str], line: int, message: str) -> None:
    text = good_pipeline(replacement)
    document = _document(text)
    assert not is_valid("pipeline", document)
    assert list(jsonschema.Draft7Validator(load_schema("pipeline")).iter_errors(document)) != []
    loaded = load_pipeline_bytes("pipeline.yaml", text.encode())
    assert loaded.invalid is not None
    assert message in loaded.invalid.message and loaded.invalid.line == line


ORG_HEADER = "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata:\n  name: acme\n"


def _org(tmp_path: Path, body: str) -> Path:
    (tmp_path / "acme.yaml").write_text(ORG_HEADER + body)
    return tmp_path


def test_org_config_accepts_fixed_by_and_ecosystem(tmp_path: Path) -> None:
    body = ("blocklist:\n"
            "  packages:\n"
            "    - {name: libfoo, versions: '<1.4.2', reason: CVE, ecosystem: pypi}\n"
            "    - {name: left-pad, versions: '*', reason: gone, ecosystem: npm}\n"
            "    - {name: anything, reason: no ecosystem given}\n"
            "  git_refs:\n"
            "    - {ref: 9f2c1e0, reason: slow, fixed_by: 4d5e6f7}\n"
            "    - {ref: abc1234, reason: no fix yet}\n")
    document = load_pipeline_bytes("x", (ORG_HEADER + body).encode()).document  # the same YAML reading
    assert is_valid("orgconfig", document)
    assert list(jsonschema.Draft7Validator(load_schema("orgconfig")).iter_errors(document)) == []
    tree = load_org_tree(str(_org(tmp_path, body)), load_catalog(()), dt.date(2026, 11, 26))
    blocklist = tree.blocklist("acme")
    assert [p.get("ecosystem") for p in blocklist["packages"]] == ["pypi", "npm", None]
    assert [g.get("fixed_by") for g in blocklist["git_refs"]] == ["4d5e6f7", None]


@pytest.mark.parametrize(("body", "line", "message"), [
    ("blocklist:\n  packages:\n    - {name: x, versions: '<1', reason: r, ecosystem: maven}\n", 7,
     "expected one of: pypi, npm"),
    ("blocklist:\n  git_refs:\n    - {ref: abc, reason: r, fixed_by: ''}\n", 7, "'blocklist.git_refs[0].fixed_by'"),
    ("blocklist:\n  git_refs:\n    - {ref: abc, reason: r, fixed: def}\n", 7, "unknown key 'fixed'"),
    (("blocklist:\n  packages:\n    - {name: x, reason: r}\n    - name: libfoo\n      reason: r\n"
      "      versions: 'below 1.4'\n"), 10,
     "blocklist entry 'libfoo': versions 'below 1.4' is not a PEP 440 specifier set"),
])
def test_org_config_rejects_bad_blocklist_fields(tmp_path: Path, body: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_org_tree(str(_org(tmp_path, body)), load_catalog(()), dt.date(2026, 11, 26))
    assert message in caught.value.message
    assert (caught.value.file, caught.value.line) == (str(tmp_path / "acme.yaml"), line)
