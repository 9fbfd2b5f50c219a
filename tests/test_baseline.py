"""`check --base GIT_REF` with real git repositories: new, existing and fixed findings."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import NOW, good_pipeline, run_cli
from pipewarden.evaluation.context import build_context
from pipewarden.evaluation.result import Result
from pipewarden.lint.baseline import mark_changes
from pipewarden.model.finding import Finding

DATA = Path(__file__).parent / "data"
CI = DATA / "ci"
ORG = str(CI / "org")
GOLDEN = DATA / "golden" / "pr-comment.md"

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, text=True, check=True)
    return done.stdout


def commit(repo: Path, files: dict[str, str], message: str) -> None:
    for relative, text in files.items():
        path = repo / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def new_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    return repo


def replace_nth(text: str, old: str, new: str, nth: int) -> str:
    """Replace the nth (0-based) occurrence of `old`."""
    parts = text.split(old)
    assert len(parts) > nth + 1, (old, nth)
    return old.join(parts[: nth + 1]) + new + old.join(parts[nth + 1 :])


# The canary bakes too short (stays), the canary rolls back by hand (fixed by the change).
BASE = good_pipeline(
    ("duration: 60m", "duration: 30m"),
    ("rollback: automatic           # automatic | manual", "rollback: manual"),
)
# The change: three lines above everything, the rollback fixed, wave 1 loses its alarms.
CHANGED = replace_nth(
    BASE.replace(
        "  description: Takes payments for carts\n",
        "  description: Takes payments for carts\n  # owned by the checkout team\n"
        "  # pager: checkout-oncall\n  # runbook: docs/runbook.md\n",
    ).replace("rollback: manual", "rollback: automatic"),
    "    alarms: [high-error-rate]\n",
    "    alarms: []\n",
    1,
)


def check_json(repo: Path, *args: str) -> tuple[int, Any]:
    result = run_cli("check", str(repo), "--org-config", ORG, "--now", NOW, "--format", "json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, result.json()


def test_new_existing_and_fixed_across_commits(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": BASE, "README": "x"}, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"svc/pipeline.yaml": CHANGED}, "the change")
    commit(repo, {"README": "y"}, "an unrelated commit")
    code, data = check_json(repo, "--base", "main")
    assert code == 1  # alarm-gating is enforce in the test org
    by_rule = {f["rule"]: f for f in data["findings"]}
    assert set(by_rule) == {"canary-bake-time", "alarm-gating"}
    assert by_rule["alarm-gating"]["change"] == "new"
    assert by_rule["canary-bake-time"]["change"] == "existing"
    [fixed] = data["fixed"]
    assert (fixed["rule"], fixed["path"], fixed["change"]) == ("auto-rollback", "stages[2].rollback", "fixed")
    # the existing finding moved three lines down and was still matched
    git(repo, "checkout", "-q", "main")
    _, base_data = check_json(repo)
    base_line = {f["rule"]: f["line"] for f in base_data["findings"]}["canary-bake-time"]
    assert by_rule["canary-bake-time"]["line"] == base_line + 3


def test_a_stage_inserted_above_keeps_findings_existing(tmp_path: Path) -> None:
    """Inserting a stage renumbers later ones (stages[2] -> stages[3]); they are the same findings."""
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": BASE}, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    extra_stage = (
        "stages:                           # ordered; artifacts flow top to bottom\n"
        "  - name: alpha\n    type: preprod\n    targets: [{name: alpha-1, hosts: [\"127.0.0.1:9001\"]}]\n"
        "    deploy: {hooks: {start: ./s.sh, validate: ./v.sh}}\n"
        "    tests: [{name: smoke, type: smoke, command: make smoke}]\n"
    )
    commit(repo, {"svc/pipeline.yaml": BASE.replace("stages:                           # ordered; artifacts flow top to bottom\n", extra_stage)}, "add a stage")
    _, data = check_json(repo, "--base", "main")
    changes = {(f["rule"], f["path"]): f["change"] for f in data["findings"]}
    assert changes == {("canary-bake-time", "stages[3].bake.duration"): "existing",
                       ("auto-rollback", "stages[3].rollback"): "existing"}
    assert data["fixed"] == []


def test_base_works_on_uncommitted_changes_and_with_relative_paths(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": BASE}, "base")
    (repo / "svc" / "pipeline.yaml").write_text(CHANGED)  # working tree only
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipewarden",
            "check",
            "svc",
            "--org-config",
            os.path.abspath(ORG),
            "--now",
            NOW,
            "--format",
            "json",
            "--base",
            "HEAD",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "RUST_LIB_BACKTRACE": "0"},
        check=False,
    )
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert {(f["rule"], f["change"]) for f in data["findings"]} == {
        ("canary-bake-time", "existing"),
        ("alarm-gating", "new"),
    }
    assert [f["file"] for f in data["fixed"]] == [os.path.join("svc", "pipeline.yaml")]
    # the index and the working tree are untouched: no checkout happened
    assert (repo / "svc" / "pipeline.yaml").read_text() == CHANGED
    assert git(repo, "status", "--porcelain") == " M svc/pipeline.yaml\n"


def test_existing_enforce_findings_still_fail(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": CHANGED}, "base with the enforce finding")
    commit(repo, {"svc/pipeline.yaml": "# moved\n" + CHANGED}, "only moves lines")
    code, data = check_json(repo, "--base", "HEAD~1")
    assert code == 1
    assert {f["change"] for f in data["findings"]} == {"existing"}
    assert data["fixed"] == []


def test_file_absent_at_base_is_all_new(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"README": "x"}, "base")
    commit(repo, {"svc/pipeline.yaml": BASE}, "add a pipeline")
    _, data = check_json(repo, "--base", "HEAD~1")
    assert {f["change"] for f in data["findings"]} == {"new"}
    assert len(data["findings"]) == 2
    assert data["fixed"] == []


def test_invalid_at_base_valid_now_fixes_valid_definition(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": BASE.replace("rollback: manual", "rolback: manual")}, "typo")
    commit(repo, {"svc/pipeline.yaml": BASE}, "fix the typo")
    code, data = check_json(repo, "--base", "HEAD~1")
    assert code == 0
    assert [f["rule"] for f in data["fixed"]] == ["valid-definition"]
    assert {f["change"] for f in data["findings"]} == {"new"}  # the file could not be checked before


def test_bad_ref_is_a_usage_error(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": BASE}, "base")
    for ref in ("no-such-branch", "--output=/tmp/x"):
        result = run_cli("check", str(repo), "--now", NOW, "--base", ref)
        assert result.exit_code == 2
        assert "--base" in result.stderr and ref in result.stderr
        assert "Traceback" not in result.stderr


def test_file_outside_git_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(BASE)
    result = run_cli("check", str(tmp_path / "pipeline.yaml"), "--now", NOW, "--base", "main")
    assert result.exit_code == 2
    assert "not in one" in result.stderr


def _finding(line: int, message: str = "m") -> Finding:
    return Finding("auto-rollback", "warn", "svc", "t", None, "f.yaml", line, "stages[0].rollback", message)


def test_duplicates_are_matched_as_a_multiset() -> None:
    context = build_context(None, (), dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    current = Result((), (_finding(3), _finding(9), _finding(12, "other")), context)
    comparison = mark_changes(current, [_finding(1), _finding(20, "gone"), _finding(21, "gone")])
    assert [f.change for f in comparison.result.findings] == ["existing", "new", "new"]
    assert [(f.message, f.change) for f in comparison.fixed] == [("gone", "fixed"), ("gone", "fixed")]


def test_golden_pr_comment(tmp_path: Path) -> None:
    """The PR comment of a realistic change, byte for byte (PIPEWARDEN_UPDATE_GOLDEN=1 rewrites it)."""
    repo = new_repo(tmp_path)
    checkout_now = (CI / "fleet" / "checkout" / "pipeline.yaml").read_text()
    billing = (CI / "fleet" / "billing" / "pipeline.yaml").read_text()
    # At the base, wave 1 had its alarm; the change removes it, fixes the rollback and adds
    # a comment block above everything.
    checkout_base = checkout_now.replace("alarms: []", "alarms: [errors]")
    checkout_now = "# reviewed by the release council\n" + checkout_now.replace(
        "    rollback: manual\n", "    rollback: automatic\n"
    )
    commit(repo, {"checkout/pipeline.yaml": checkout_base, "billing/pipeline.yaml": billing}, "base")
    git(repo, "checkout", "-q", "-b", "feature")
    commit(repo, {"checkout/pipeline.yaml": checkout_now}, "the change")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipewarden",
            "check",
            "--org-config",
            os.path.abspath(ORG),
            "--now",
            NOW,
            "--format",
            "markdown",
            "--base",
            "main",
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "RUST_LIB_BACKTRACE": "0"},
        check=False,
    )
    assert done.returncode == 1, done.stderr
    if os.environ.get("PIPEWARDEN_UPDATE_GOLDEN"):
        GOLDEN.write_text(done.stdout, encoding="utf-8")
    assert done.stdout == GOLDEN.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["sarif", "github", "junit", "gitlab", "text"])
def test_every_format_accepts_base(tmp_path: Path, fmt: str) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": BASE}, "base")
    commit(repo, {"svc/pipeline.yaml": CHANGED}, "change")
    result = run_cli("check", str(repo), "--org-config", ORG, "--now", NOW, "--format", fmt, "--base", "HEAD~1")
    assert result.exit_code == 1, result.stderr


def test_github_summary_counts_changes(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": BASE}, "base")
    commit(repo, {"svc/pipeline.yaml": CHANGED}, "change")
    result = run_cli("check", str(repo), "--org-config", ORG, "--now", NOW, "--format", "github", "--base", "HEAD~1")
    assert result.stdout.splitlines()[-1].endswith("; 1 new, 1 existing, 1 fixed")
