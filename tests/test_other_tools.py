"""cli.md's discovery rule: a file that discovery finds belongs to another tool (Buildkite,
Concourse ...) when its top level is a mapping with neither `apiVersion` nor `kind`, or with an
`apiVersion` that is not pipewarden's: it is skipped and counted in one note on stderr. A file with
`kind` but no `apiVersion`, one that breaks a loader limit, one that is not a mapping, and any file
named on the command line are checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import NOW, good_pipeline, run_cli
from pipewarden.evaluation import pool

BUILDKITE = "steps:\n  - label: test\n    command: make test\n"
CONCOURSE = "resources:\n  - name: repo\n    type: git\njobs:\n  - name: build\n    plan: [{get: repo}]\n"
OTHER_VERSION = "apiVersion: tekton.dev/v1\nkind: Pipeline\nspec: {tasks: []}\n"
KIND_ONLY = "kind: Pipeline\nmetadata: {name: svc, team: t}\n"
# 10 ** 5 nodes through aliases: past the loader's alias limit, whatever its keys.
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]\n" for prev, name in zip("abcd", "bcde")
)

Write = Callable[[str, str], Path]


def _fleet(write: Write) -> None:
    write("svc/pipeline.yaml", good_pipeline())
    write("svc/.buildkite/pipeline.yml", BUILDKITE)
    write("svc/ci/pipeline.yml", CONCOURSE)
    write("tekton/pipeline.yaml", OTHER_VERSION)


def test_other_tools_files_are_skipped_with_one_note(write: Write, tmp_path: Path) -> None:
    _fleet(write)
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.stdout + result.stderr
    data = result.json()
    assert [p["file"] for p in data["pipelines"]] == [str(tmp_path / "svc" / "pipeline.yaml")]
    assert data["findings"] == []
    notes = result.stderr.splitlines()
    assert len(notes) == 1, result.stderr
    assert notes[0].startswith("pipewarden: note: skipped 3 file(s) of other tools")
    for name in ("svc/.buildkite/pipeline.yml", "svc/ci/pipeline.yml", "tekton/pipeline.yaml"):
        assert str(tmp_path / name) in notes[0]


def test_the_note_names_three_files_and_counts_the_rest(write: Write, tmp_path: Path) -> None:
    for i in range(5):
        write(f"r{i}/.buildkite/pipeline.yml", BUILDKITE)
    result = run_cli("check", str(tmp_path), "--now", NOW)
    assert result.exit_code == 0
    [note] = result.stderr.splitlines()
    assert "skipped 5 file(s)" in note and "and 2 more" in note


def test_the_skip_holds_on_a_cached_run_and_in_worker_processes(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fleet(write)
    first = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    again = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)  # from the cache
    monkeypatch.setattr(pool, "PARALLEL_THRESHOLD", 2)  # worker processes, and their records
    workers = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW, "--no-cache")
    for run in (again, workers):
        assert (run.exit_code, run.stdout, run.stderr) == (first.exit_code, first.stdout, first.stderr)


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        (KIND_ONLY, "apiVersion", "missing the required key 'apiVersion'"),
        (ALIAS_BOMB, "", "alias"),
        ("- step: one\n- step: two\n", "", "must be of type object"),
    ],
    ids=["kind-without-apiVersion", "alias-bomb", "not-a-mapping"],
)
def test_files_that_are_pipewardens_to_report_are_checked(
    write: Write, tmp_path: Path, text: str, path: str, message: str
) -> None:
    write("svc/pipeline.yaml", text)
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 1
    [finding] = result.json()["findings"]
    assert (finding["rule"], finding["level"], finding["path"]) == ("valid-definition", "enforce", path)
    assert message in finding["message"]
    assert "other tools" not in result.stderr


def test_a_file_named_on_the_command_line_is_always_checked(write: Write, tmp_path: Path) -> None:
    buildkite = write(".buildkite/pipeline.yml", BUILDKITE)
    tekton = write("tekton.yaml", "\n" + OTHER_VERSION)
    result = run_cli("check", str(buildkite), str(tekton), "--format", "json", "--now", NOW)
    assert result.exit_code == 1
    assert result.stderr == ""
    first, second = result.json()["findings"]
    assert (first["rule"], first["line"], first["path"]) == ("valid-definition", 1, "")
    assert "neither apiVersion nor kind" in first["message"] and "another tool's file" in first["message"]
    assert (second["rule"], second["line"], second["path"]) == ("valid-definition", 2, "apiVersion")
    assert "apiVersion 'tekton.dev/v1' is not pipewarden's" in second["message"]


def test_report_skips_them_too(write: Write, tmp_path: Path) -> None:
    _fleet(write)
    org = write("orgs/root.yaml", "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\n"
                                  "teams: [checkout]\n")
    result = run_cli("report", "--org-config", str(org.parent), str(tmp_path / "svc"), str(tmp_path / "tekton"),
                     "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    [team] = result.json()["teams"]
    assert (team["team"], team["pipelines"], team["repos"]) == ("checkout", 1, 1)
    assert "skipped 3 file(s) of other tools" in result.stderr


def test_only_other_tools_files_is_an_empty_passing_run(write: Write, tmp_path: Path) -> None:
    write(".buildkite/pipeline.yml", BUILDKITE)
    result = run_cli("check", str(tmp_path), "--format", "json", "--now", NOW)
    assert result.exit_code == 0
    assert result.json()["summary"]["pipelines"] == 0
    assert "skipped 1 file(s) of other tools" in result.stderr
