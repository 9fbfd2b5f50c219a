"""Issue 15 item 9: `rules promote` asks before it writes. On a terminal it asks (no by default),
`--yes` skips the question, and without a terminal (CI, scripts) it refuses unless `--yes` or
`--dry-run` says what is wanted; the preview's groups add up."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from conftest import NOW, run_cli
from test_promote import RETAIL, RULE, setup


def _args(orgs: Path, fleet: Path, *extra: str) -> list[str]:
    return ["rules", "promote", RULE, "--org", "retail", "--org-config", str(orgs), "--now", NOW, *extra, str(fleet)]


def _on_a_terminal(args: list[str], answer: str) -> subprocess.CompletedProcess[str]:
    """Run pipewarden with a terminal as stdin (stdout and stderr captured) and type `answer`."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "pipewarden", *args], stdin=terminal,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        os.write(controller, answer.encode())
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            raise
    finally:
        os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(args, process.returncode, out, err)


def test_without_a_terminal_it_refuses_unless_told(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    result = run_cli(*_args(orgs, fleet))
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"pipewarden: error: rules promote writes {orgs / 'retail.yaml'} only when confirmed, "
                             "and stdin is not a terminal: add --yes to write without asking (CI), or --dry-run to "
                             "print the impact only\n")
    assert (orgs / "retail.yaml").read_text() == RETAIL
    assert run_cli(*_args(orgs, fleet, "--dry-run")).exit_code == 0
    assert (orgs / "retail.yaml").read_text() == RETAIL
    written = run_cli(*_args(orgs, fleet, "--yes"))
    assert written.exit_code == 0 and "Wrote " in written.stdout
    # Nothing left to write: no question, no refusal.
    again = run_cli(*_args(orgs, fleet))
    assert again.exit_code == 0 and "Nothing to change" in again.stdout


def test_on_a_terminal_it_asks_and_no_is_the_default(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    declined = _on_a_terminal(_args(orgs, fleet), "\n")
    assert declined.returncode == 0, declined.stderr
    assert f"Write {orgs / 'retail.yaml'}? [y/N]" in declined.stderr
    assert "Totals: 5 pipelines:" in declined.stdout  # the preview came first
    assert declined.stdout.endswith(f"Nothing written to {orgs / 'retail.yaml'}.\n")
    assert (orgs / "retail.yaml").read_text() == RETAIL
    accepted = _on_a_terminal(_args(orgs, fleet), "y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert f"Wrote {orgs / 'retail.yaml'}: level: enforce; enforce_from removed.\n" in accepted.stdout
    assert "level: enforce\n" in (orgs / "retail.yaml").read_text()


def test_json_on_a_terminal_asks_on_stderr(tmp_path: Path) -> None:
    import json

    orgs, fleet = setup(tmp_path)
    declined = _on_a_terminal(_args(orgs, fleet, "--format", "json"), "n\n")
    assert declined.returncode == 0, declined.stderr
    assert "Totals: 5 pipelines: 1 newly failing" in declined.stderr and "[y/N]" in declined.stderr
    document = json.loads(declined.stdout)
    assert (document["written"], document["dry_run"]) == (False, False)
    assert (orgs / "retail.yaml").read_text() == RETAIL
    accepted = _on_a_terminal(_args(orgs, fleet, "--format", "json"), "y\n")
    assert json.loads(accepted.stdout)["written"] is True


def test_yes_on_a_terminal_does_not_ask(tmp_path: Path) -> None:
    orgs, fleet = setup(tmp_path)
    result = _on_a_terminal(_args(orgs, fleet, "--yes"), "")
    assert result.returncode == 0 and "[y/N]" not in result.stderr
    assert "level: enforce\n" in (orgs / "retail.yaml").read_text()


def test_a_rule_that_fails_while_it_runs_counts_as_newly_failing(tmp_path: Path) -> None:
    """A rule turned on that errors on a pipeline fails it through `policy-error`: that pipeline
    is newly failing, like its team is newly blocked."""
    orgs, fleet = setup(tmp_path)
    rule = tmp_path / "policies" / "explodes"
    rule.mkdir(parents=True)
    (rule / "explodes.rego").write_text(
        "# METADATA\n# custom: {id: explodes, level: \"off\"}\npackage pipewarden.rules.explodes\n\nimport rego.v1\n\n"
        'deny contains {"msg": "x", "path": ""} if to_number(input.pipeline.metadata.name) > 0\n'
    )
    result = run_cli("rules", "promote", "explodes", "--org", "platform", "--org-config", str(orgs), "--now", NOW,
                     "--policies", str(rule.parent), "--dry-run", "--format", "json", str(fleet))
    assert result.exit_code == 0, result.stderr
    data = result.json()
    [team] = data["teams"]
    assert [p["pipeline"] for p in team["newly_failing"]] == ["search-api"] and team["newly_blocked"] is True
    assert data["totals"]["newly_failing"] == 1 and data["totals"]["pipelines"] == 1
