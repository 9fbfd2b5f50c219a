"""`--exclude GLOB` (check, report, rules promote): skips discovered files matching the glob,
matched against the path as given; `**` spans folders and a matching folder is skipped whole.
A file named on the command line is never excluded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import GOOD_PIPELINE, NOW, good_pipeline, run_cli
from pipewarden.load.discover import Exclude, discover_files

TREE = (
    "a/pipeline.yaml",
    "a/.buildkite/pipeline.yml",
    "b/ci/pipeline.yml",
    "b/deep/ci/pipeline.yml",
    "vendor/x/pipeline.yaml",
    "vendored/pipeline.yaml",
)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in TREE:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x: 1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("given", "globs", "left"),
    [
        (".", ["**/.buildkite"], ["a/pipeline.yaml", "b/ci/pipeline.yml", "b/deep/ci/pipeline.yml",
                                  "vendor/x/pipeline.yaml", "vendored/pipeline.yaml"]),
        (".", ["vendor"], ["a/.buildkite/pipeline.yml", "a/pipeline.yaml", "b/ci/pipeline.yml",
                           "b/deep/ci/pipeline.yml", "vendored/pipeline.yaml"]),
        (".", ["b/*/pipeline.yml"], ["a/.buildkite/pipeline.yml", "a/pipeline.yaml", "b/deep/ci/pipeline.yml",
                                     "vendor/x/pipeline.yaml", "vendored/pipeline.yaml"]),
        (".", ["b/**/pipeline.yml", "vendor*"], ["a/.buildkite/pipeline.yml", "a/pipeline.yaml"]),
        ("./b", ["b/deep"], ["./b/ci/pipeline.yml"]),
        ("b", ["*/ci"], ["b/deep/ci/pipeline.yml"]),
        (".", ["[ab]/**/pipeline.y?ml"], ["a/.buildkite/pipeline.yml", "b/ci/pipeline.yml", "b/deep/ci/pipeline.yml",
                                          "vendor/x/pipeline.yaml", "vendored/pipeline.yaml"]),
        (".", ["[!v]*/**/pipeline.y*ml"], ["vendor/x/pipeline.yaml", "vendored/pipeline.yaml"]),
    ],
)
def test_globs_match_the_path_as_given(tree: Path, given: str, globs: list[str], left: list[str]) -> None:
    found = discover_files([given], Exclude(tuple(globs)))
    assert sorted(found.files) == left
    assert found.excluded > 0


def test_project_config_globs_are_relative_to_its_folder(tree: Path) -> None:
    """The same glob, anchored at the config's folder, means the same from a subfolder."""
    os.chdir(tree / "b")
    found = discover_files(["."], Exclude(config_globs=("b/deep",), base=str(tree)))
    assert found.files == ["ci/pipeline.yml"]
    found = discover_files([str(tree / "b")], Exclude(config_globs=("b/ci/*",), base=str(tree)))
    assert found.files == [str(tree / "b" / "deep" / "ci" / "pipeline.yml")]


def test_a_named_file_is_never_excluded(tree: Path) -> None:
    found = discover_files(["vendor/x/pipeline.yaml"], Exclude(("vendor",)))
    assert (found.files, found.excluded) == (["vendor/x/pipeline.yaml"], 0)


def _fleet(root: Path) -> None:
    (root / "svc").mkdir()
    (root / "svc" / "pipeline.yaml").write_text(good_pipeline())
    (root / "legacy" / "old").mkdir(parents=True)
    (root / "legacy" / "old" / "pipeline.yaml").write_text(
        GOOD_PIPELINE.replace("name: checkout-service", "name: old").replace("127.0.0.1", "10.9.9.9")
        .replace("rollback: automatic", "rollback: manual")
    )


def test_report_excludes(tmp_path: Path) -> None:
    _fleet(tmp_path)
    org = tmp_path / "orgs" / "root.yaml"
    org.parent.mkdir()
    org.write_text("apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n")
    result = run_cli("report", str(tmp_path / "svc"), str(tmp_path / "legacy"), "--org-config", str(org.parent),
                     "--exclude", "**/legacy/old", "--format", "json", "--now", NOW)
    assert result.exit_code == 0, result.stderr
    [team] = result.json()["teams"]
    assert (team["pipelines"], team["repos"]) == (1, 1)
    assert result.stderr == ""


def test_rules_promote_previews_without_the_excluded_files(tmp_path: Path) -> None:
    _fleet(tmp_path)
    org = tmp_path / "orgs" / "root.yaml"
    org.parent.mkdir()
    org.write_text("apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\nteams: [checkout]\n")
    args = ("rules", "promote", "auto-rollback", "--org", "acme", "--org-config", str(org.parent), "--dry-run",
            "--format", "json", "--now", NOW)
    everything = run_cli(*args, str(tmp_path / "svc"), str(tmp_path / "legacy"))
    excluded = run_cli(*args, str(tmp_path / "svc"), str(tmp_path / "legacy"), "--exclude", "**/old")
    assert everything.exit_code == excluded.exit_code == 0, everything.stderr + excluded.stderr
    assert "old" in everything.stdout and "legacy" not in excluded.stdout
    assert everything.json() != excluded.json()
