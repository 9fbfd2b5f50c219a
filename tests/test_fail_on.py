"""`--fail-on LEVEL` of check: `enforce` (default), `warn`, and `new` (with `--base`: only the
enforce findings the change introduced fail); the PR comment, the GitHub Action, the GitLab
template and the pre-commit hooks offer it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import NOW, good_pipeline, run_cli
from test_baseline import GIT_ENV, ORG, commit, git, new_repo

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# alarm-gating is enforce in the test org: a stage without alarms is an enforce finding.
NO_ALARMS = ("    alarms: [high-error-rate]\n", "    alarms: []\n")
EXISTING = good_pipeline(NO_ALARMS)
# The same finding, and a new one: the canary rolls back by hand (auto-rollback, warn by default)
# and alarm-gating fires for a second stage.
WITH_NEW_WARNING = good_pipeline(NO_ALARMS, ("rollback: automatic           # automatic | manual", "rollback: manual"))


def _repo(tmp_path: Path, base: str, now: str) -> Path:
    repo = new_repo(tmp_path)
    commit(repo, {"svc/pipeline.yaml": base}, "base")
    (repo / "svc" / "pipeline.yaml").write_text(now)
    return repo


def _check(repo: Path, *args: str) -> Any:
    return run_cli("check", str(repo), "--org-config", ORG, "--now", NOW, *args)


def test_new_without_base_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "pipeline.yaml").write_text(good_pipeline())
    result = run_cli("check", str(tmp_path), "--fail-on", "new")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "--fail-on new needs --base GIT_REF" in result.stderr and "--base origin/main" in result.stderr


def test_existing_enforce_findings_do_not_fail_with_new(tmp_path: Path) -> None:
    repo = _repo(tmp_path, EXISTING, EXISTING.replace("  description:", "  # a comment\n  description:"))
    default = _check(repo, "--base", "HEAD", "--format", "json")
    new = _check(repo, "--base", "HEAD", "--format", "json", "--fail-on", "new")
    assert default.exit_code == 1 and new.exit_code == 0
    assert default.json() == new.json()  # the same findings, only the verdict differs
    assert [f["change"] for f in new.json()["findings"] if f["level"] == "enforce"] == ["existing"]
    text = _check(repo, "--base", "HEAD", "--fail-on", "new")
    assert text.stdout.splitlines()[-1].startswith("passed:")


def test_a_new_enforce_finding_fails_with_new(tmp_path: Path) -> None:
    repo = _repo(tmp_path, good_pipeline(), EXISTING)
    result = _check(repo, "--base", "HEAD", "--fail-on", "new", "--format", "json")
    assert result.exit_code == 1
    [finding] = [f for f in result.json()["findings"] if f["level"] == "enforce"]
    assert (finding["rule"], finding["change"]) == ("alarm-gating", "new")


def test_a_new_warning_does_not_fail_with_new(tmp_path: Path) -> None:
    repo = _repo(tmp_path, EXISTING, WITH_NEW_WARNING)
    result = _check(repo, "--base", "HEAD", "--fail-on", "new", "--format", "json")
    assert result.exit_code == 0
    changes = {(f["rule"], f["level"], f["change"]) for f in result.json()["findings"]}
    assert ("auto-rollback", "warn", "new") in changes and ("alarm-gating", "enforce", "existing") in changes


@pytest.mark.parametrize(("fmt", "failing_mark"), [("github", "::error "), ("gitlab", '"major"'),
                                                   ("junit", "<failure"), ("markdown", "🔴")])
def test_every_format_follows_fail_on_new(tmp_path: Path, fmt: str, failing_mark: str) -> None:
    repo = _repo(tmp_path, EXISTING, EXISTING.replace("  description:", "  # a comment\n  description:"))
    default = _check(repo, "--base", "HEAD", "--format", fmt)
    new = _check(repo, "--base", "HEAD", "--format", fmt, "--fail-on", "new")
    assert failing_mark in default.stdout
    assert failing_mark not in new.stdout


def test_the_pr_comment_says_what_fails(tmp_path: Path) -> None:
    repo = _repo(tmp_path, good_pipeline(), EXISTING)
    comment = _check(repo, "--base", "HEAD", "--format", "markdown", "--fail-on", "new").stdout
    assert "fails on new enforce findings" in comment


# --- the pre-commit hooks ----------------------------------------------------------------------


def _hooks() -> dict[str, dict[str, Any]]:
    return {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}


def _run_hook(repo: Path, hook: str, files: list[str]) -> subprocess.CompletedProcess[str]:
    """What pre-commit runs: the hook's entry with the staged files' names, in the repository, with
    the staged content in the working tree."""
    entry = shlex.split(_hooks()[hook]["entry"])
    env = {**GIT_ENV, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([*entry, *files], cwd=repo, env=env, capture_output=True, text=True, check=False)


def test_hook_definitions() -> None:
    hooks = _hooks()
    assert set(hooks) == {"pipewarden", "pipewarden-new"}
    assert hooks["pipewarden"]["entry"] == "pipewarden check --as-discovered"
    assert hooks["pipewarden-new"]["entry"] == "pipewarden check --as-discovered --base HEAD --fail-on new"
    for hook in hooks.values():
        assert hook["language"] == "python" and hook["require_serial"] is True


def test_the_new_hook_blocks_only_what_the_commit_introduces(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    (repo / ".pipewarden.yaml").write_text(f"apiVersion: pipewarden/v1\nkind: ProjectConfig\norg_config: {ORG}\n")
    commit(repo, {"svc/pipeline.yaml": EXISTING}, "base")
    (repo / "svc" / "pipeline.yaml").write_text(WITH_NEW_WARNING)
    git(repo, "add", "svc/pipeline.yaml")
    passing = _run_hook(repo, "pipewarden-new", ["svc/pipeline.yaml"])
    blocking = _run_hook(repo, "pipewarden", ["svc/pipeline.yaml"])
    assert (passing.returncode, blocking.returncode) == (0, 1), passing.stderr + blocking.stderr
    assert "config: .pipewarden.yaml" in passing.stdout and "[existing]" in passing.stdout
    (repo / "other").mkdir()
    (repo / "other" / "pipeline.yaml").write_text(EXISTING.replace("checkout-service", "other-service")
                                                  .replace("127.0.0.1", "10.1.1.1"))
    git(repo, "add", "other/pipeline.yaml")
    new_file = _run_hook(repo, "pipewarden-new", ["svc/pipeline.yaml", "other/pipeline.yaml"])
    assert new_file.returncode == 1, new_file.stderr


def test_the_new_hook_on_a_first_commit_counts_everything_new(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    (repo / "svc").mkdir()
    (repo / "svc" / "pipeline.yaml").write_text(EXISTING)
    git(repo, "add", "svc/pipeline.yaml")
    done = subprocess.run(
        [str(BIN / "pipewarden"), "check", "--as-discovered", "--base", "HEAD", "--fail-on", "new", "--org-config",
         ORG, "--format", "json", "svc/pipeline.yaml"],
        cwd=repo, env=GIT_ENV, capture_output=True, text=True, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert {f["change"] for f in yaml.safe_load(done.stdout)["findings"]} == {"new"}


def test_the_hooks_skip_another_tools_staged_pipeline(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    commit(repo, {"README": "x"}, "base")
    (repo / ".buildkite").mkdir()
    (repo / ".buildkite" / "pipeline.yml").write_text("steps:\n  - command: make test\n")
    git(repo, "add", ".buildkite/pipeline.yml")
    for hook in ("pipewarden", "pipewarden-new"):
        done = _run_hook(repo, hook, [".buildkite/pipeline.yml"])
        assert done.returncode == 0, done.stdout + done.stderr
        assert "skipped 1 file(s) of other tools" in done.stderr


def test_as_discovered_applies_exclude_to_named_files(tmp_path: Path) -> None:
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "pipeline.yaml").write_text("apiVersion: pipewarden/v1\nkind: Pipeline\n")
    named = run_cli("check", str(tmp_path / "legacy" / "pipeline.yaml"), "--exclude", "**/legacy")
    filtered = run_cli("check", str(tmp_path / "legacy" / "pipeline.yaml"), "--exclude", "**/legacy",
                       "--as-discovered")
    assert (named.exit_code, filtered.exit_code) == (1, 0)
    assert "no pipeline file found" in filtered.stderr and "(1 excluded)" in filtered.stderr


# --- the GitHub Action and the GitLab template ---------------------------------------------------


def _action_step() -> dict[str, Any]:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    [step] = [s for s in action["runs"]["steps"] if s.get("id") == "check"]
    return dict(step)


def _run_action(repo: Path, tmp_path: Path, **inputs: str) -> dict[str, str]:
    """The action's check step, as the runner runs it (bash, inputs in the environment); its
    outputs."""
    output, summary = tmp_path / "output", tmp_path / "summary"
    step = _action_step()
    env = {
        **GIT_ENV,
        **{name: "" for name in step["env"]},  # every input empty unless given below
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RUNNER_TEMP": str(tmp_path),
        "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "PW_PATHS": ".",
        "PW_ORG_CONFIG": ORG, "PW_POLICIES": "", "PW_FAIL_ON": "enforce", "PW_BASE": "", "PW_ANNOTATIONS": "false",
        "PR_BASE_REF": "", "PUSH_BEFORE": "", **inputs,
    }
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=repo, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    outputs["log"] = done.stdout
    return outputs


def test_the_action_offers_fail_on_new(tmp_path: Path) -> None:
    repo = _repo(tmp_path, EXISTING, EXISTING.replace("  description:", "  # a comment\n  description:"))
    assert _run_action(repo, tmp_path, PW_BASE="HEAD")["exit-code"] == "1"
    new = _run_action(repo, tmp_path, PW_BASE="HEAD", PW_FAIL_ON="new")
    assert (new["exit-code"], new["fail-on"]) == ("0", "new")
    assert "fails on new enforce findings" in Path(new["comment"]).read_text()


def test_the_action_without_a_base_fails_on_enforce_with_a_notice(tmp_path: Path) -> None:
    repo = _repo(tmp_path, EXISTING, EXISTING)
    outputs = _run_action(repo, tmp_path, PW_FAIL_ON="new", PUSH_BEFORE="0" * 40)
    assert (outputs["exit-code"], outputs["fail-on"]) == ("1", "enforce")
    assert "::notice title=pipewarden::fail-on new needs a base" in outputs["log"]


def test_the_gitlab_template_offers_fail_on_new() -> None:
    template = yaml.safe_load((ROOT / "ci" / "gitlab-pipewarden.yml").read_text())
    assert "new" in (ROOT / "ci" / "gitlab-pipewarden.yml").read_text().split("PIPEWARDEN_FAIL_ON:")[1].splitlines()[0]
    script = "\n".join(template["pipewarden"]["script"])
    assert 'if [ "$fail_on" = "new" ] && [ -z "${CI_MERGE_REQUEST_TARGET_BRANCH_NAME:-}" ]' in script
