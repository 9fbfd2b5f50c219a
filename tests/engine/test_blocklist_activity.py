"""The manifest and the `blocklist` gate in the activities (engine.md, "Manifest", "Gates",
"Rollback"): the build records the manifest; the entry gates judge the org chain's entries as the
org config is now (an entry added while an artifact is in flight stops it at its next stage; an
override lets it pass; an invalid org config makes the gate wait naming the file and line), git
entries by ancestry in the pipeline's repository with `fixed_by`; a rollback never restores a
blocklisted artifact. Temporal's ActivityEnvironment, real git repositories, a real store."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment
from workflow_helpers import git, make_repo, write

from pipewarden.engine.activities.engine import EngineActivities
from pipewarden.engine.activities.rollback_inputs import read_inputs
from pipewarden.engine.contract import (
    BuildAnswer,
    BuildRequest,
    EntryGatesRequest,
    GateAnswer,
    RollbackPlanAnswer,
    RollbackPlanRequest,
)
from pipewarden.engine.domain.ids import format_time
from pipewarden.engine.domain.overrides import grant
from pipewarden.engine.store import EngineStore

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
PIPELINE = "demo-app"

ROOT = """apiVersion: pipewarden/v1
kind: OrgConfig
metadata: {name: acme, owners: [ops]}
"""
SHOP = """apiVersion: pipewarden/v1
kind: OrgConfig
metadata: {name: shop, parent: acme, owners: [ops]}
teams: [demo]
"""


class Engine:
    """A state dir, a store, the activities and the pipeline's repository: v1 (libfoo 1.4.0 pinned),
    a regression on top of it, the fix on top of that, and a side branch from v1."""

    def __init__(self, tmp_path: Path, store: EngineStore) -> None:
        self.tmp_path = tmp_path
        self.store = store
        self.state = tmp_path / "state"
        self.org = tmp_path / "org"
        self.org_files(root_blocklist="", shop_blocklist="")
        self.repo = make_repo(tmp_path, tmp_path / "record.txt", stages=2)
        write(self.repo / "requirements.txt", "LibFoo==1.4.0\nrequests>=2\n")
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "pin libfoo")
        self.v1 = git(self.repo, "rev-parse", "HEAD")
        write(self.repo / "app.txt", "v2 slow\n")
        git(self.repo, "commit", "-q", "-am", "regression")
        self.bad = git(self.repo, "rev-parse", "HEAD")
        git(self.repo, "tag", "slow-release", self.bad)
        write(self.repo / "app.txt", "v3 fast again\n")
        git(self.repo, "commit", "-q", "-am", "fix")
        self.fix = git(self.repo, "rev-parse", "HEAD")
        git(self.repo, "checkout", "-q", "-b", "side", self.v1)
        write(self.repo / "app.txt", "side\n")
        git(self.repo, "commit", "-q", "-am", "side branch")
        self.side = git(self.repo, "rev-parse", "HEAD")
        git(self.repo, "checkout", "-q", "main")
        store.set_pipeline_source(PIPELINE, repo=str(self.repo), branch="main", path="pipeline.yaml", now=NOW)
        self.activities = EngineActivities(store, self.state, org_config=str(self.org))

    def org_files(self, *, root_blocklist: str, shop_blocklist: str) -> None:
        write(self.org / "acme.yaml", ROOT + root_blocklist)
        write(self.org / "shop.yaml", SHOP + shop_blocklist)

    def env(self, execution: str, activity_id: str) -> ActivityEnvironment:
        env = ActivityEnvironment()
        env.info = dataclasses.replace(env.info, workflow_id=execution, activity_id=activity_id)
        return env

    def build(self, commit: str, command: str = "mkdir -p dist && cp app.txt dist/") -> tuple[str, BuildAnswer]:
        execution = self.store.create_execution(PIPELINE, commit, trigger="release", now=NOW).id
        answer: BuildAnswer = self.env(execution, "build").run(self.activities.build, BuildRequest(
            execution, PIPELINE, str(self.repo), commit, "pipeline.yaml", [command], [], "dist/", 60))
        return execution, answer

    def gates(self, execution: str, commit: str, stage: str, at: datetime = NOW) -> dict[str, GateAnswer]:
        run = self.store.start_stage_run(execution, stage, now=at)
        answers: list[GateAnswer] = self.env(execution, f"gates-{stage}").run(
            self.activities.entry_gates, EntryGatesRequest(run.id, execution, PIPELINE, str(self.repo), commit,
                                                           "pipeline.yaml", stage, [], [], format_time(at)))
        return {answer.gate: answer for answer in answers}

    def event(self, execution: str, stage: str) -> dict[str, Any]:
        events = [e for e in self.store.events(execution=execution, types=["gate"])
                  if e.stage == stage and e.data["gate"] == "blocklist"]
        return dict(events[-1].data)


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        yield Engine(tmp_path, store)


def test_the_build_records_the_manifest_author_and_committer_time(engine: Engine) -> None:
    execution, answer = engine.build(engine.v1)
    assert answer.ok, answer.reason
    record = engine.activities.artifacts.record(engine.v1[:12])
    assert record is not None
    assert record.packages == [{"name": "libfoo", "version": "1.4.0", "ecosystem": "pypi"}]
    assert record.author == "Test Dev <dev@example.com>"
    assert record.committer_time == git(engine.repo, "log", "-1", "--format=%cI", engine.v1)
    # A record written before the manifest existed reads as an empty manifest.
    path = engine.activities.artifacts.record_path(engine.v1[:12])
    raw = json.loads(path.read_text())
    del raw["packages"]
    path.write_text(json.dumps(raw))
    old = engine.activities.artifacts.record(engine.v1[:12])
    assert old is not None and old.packages == []
    assert engine.gates(execution, engine.v1, "beta")["blocklist"].result == "pass"


def test_a_manifest_that_cannot_be_read_fails_the_build(engine: Engine) -> None:
    text = (engine.repo / "pipeline.yaml").read_text().replace("  artifact: dist/\n",
                                                               "  artifact: dist/\n  sbom: dist/bom.json\n")
    write(engine.repo / "pipeline.yaml", text)
    git(engine.repo, "commit", "-q", "-am", "sbom")
    commit = git(engine.repo, "rev-parse", "HEAD")
    _, answer = engine.build(commit)
    assert not answer.ok and answer.artifact is None
    assert answer.reason == ("the artifact's manifest cannot be read: build.sbom 'dist/bom.json' does not exist "
                             "after the build commands (they must write it in the checkout)")
    assert engine.activities.artifacts.record(commit[:12]) is None


def test_an_sbom_the_build_writes_is_the_manifest(engine: Engine) -> None:
    text = (engine.repo / "pipeline.yaml").read_text().replace("  artifact: dist/\n",
                                                               "  artifact: dist/\n  sbom: dist/bom.json\n")
    write(engine.repo / "pipeline.yaml", text)
    sbom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": [
        {"type": "library", "name": "left-pad", "version": "1.3.0", "purl": "pkg:npm/left-pad@1.3.0"},
        {"type": "library", "name": "LibFoo", "version": "1.4.1", "purl": "pkg:pypi/LibFoo@1.4.1"}]}
    write(engine.repo / "bom.json", json.dumps(sbom))
    git(engine.repo, "add", "-A")
    git(engine.repo, "commit", "-q", "-m", "sbom")
    commit = git(engine.repo, "rev-parse", "HEAD")
    _, answer = engine.build(commit, "mkdir -p dist && cp app.txt bom.json dist/")
    assert answer.ok, answer.reason
    record = engine.activities.artifacts.record(commit[:12])
    assert record is not None and record.packages == [  # not requirements.txt's libfoo 1.4.0
        {"name": "left-pad", "version": "1.3.0", "ecosystem": "npm"},
        {"name": "libfoo", "version": "1.4.1", "ecosystem": "pypi"}]


def test_an_entry_added_while_in_flight_stops_the_artifact_at_its_next_stage(engine: Engine) -> None:
    execution, answer = engine.build(engine.v1)
    assert answer.ok
    beta = engine.gates(execution, engine.v1, "beta")
    assert list(beta) == ["policy", "blocklist", "stage_busy", "paused"]  # engine.md's order
    assert (beta["blocklist"].result, beta["blocklist"].reason) == ("pass", "no blocklist entry matches (0 checked)")
    # While the artifact is in beta, the root node blocklists libfoo below 1.4.2.
    engine.org_files(root_blocklist="blocklist:\n  packages:\n"
                                    "    - {name: libfoo, versions: '<1.4.2', reason: CVE-2026-1234}\n",
                     shop_blocklist="")
    later = NOW + timedelta(minutes=5)
    prod = engine.gates(execution, engine.v1, "prod", later)["blocklist"]
    assert (prod.result, prod.code) == ("fail", "blocked_package")
    assert prod.reason == ("1 blocklist match: package libfoo 1.4.0 (pypi) is in libfoo <1.4.2 (listed by acme): "
                           "CVE-2026-1234")
    data = engine.event(execution, "prod")
    assert data["inputs"]["matches"][0]["name"] == "libfoo" and data["inputs"]["packages"] == 1
    # `override blocklist` for prod lets it pass (then `retry` is the way through).
    engine.store.put_override(grant("blocklist", pipeline=PIPELINE, stage="prod", actor="dana",
                                    reason="not exploitable here", now=later))
    overridden = engine.gates(execution, engine.v1, "prod", later + timedelta(seconds=1))["blocklist"]
    assert overridden.result == "pass"
    assert overridden.reason.startswith("overridden by dana until ")
    assert engine.event(execution, "prod")["inputs"]["overridden"]["code"] == "blocked_package"
    # An override of another stage does nothing here.
    execution2, _ = engine.build(engine.v1)
    assert engine.gates(execution2, engine.v1, "beta", later)["blocklist"].result == "fail"


def test_git_entries_by_ancestry_with_fixed_by(engine: Engine) -> None:
    # The child node lists the regression (as a tag) with its fix, and a ref the repository does
    # not know; the root lists nothing: entries of the whole chain add up.
    engine.org_files(root_blocklist="", shop_blocklist=(
        "blocklist:\n  git_refs:\n"
        f"    - {{ref: slow-release, reason: performance regression, fixed_by: '{engine.fix[:9]}'}}\n"
        "    - {ref: 0badc0de0badc0de, reason: a typo}\n"))
    results = {}
    for name, commit in (("v1", engine.v1), ("bad", engine.bad), ("fix", engine.fix), ("side", engine.side)):
        execution, answer = engine.build(commit)
        assert answer.ok, answer.reason
        results[name] = (engine.gates(execution, commit, "beta")["blocklist"], engine.event(execution, "beta"))
    bad, bad_event = results["bad"]
    assert (bad.result, bad.code) == ("fail", "blocked_commit")
    assert bad.reason == (f"1 blocklist match: commit {engine.bad[:12]} is or descends from slow-release and not "
                          f"from its fix {engine.fix[:9]} (listed by shop): performance regression (unknown to the "
                          "repository, matching nothing: 0badc0de0badc0de)")
    assert bad_event["inputs"]["unknown_refs"] == ["0badc0de0badc0de"]
    for name in ("v1", "fix", "side"):
        result, event = results[name]
        assert result.result == "pass", (name, result.reason)
        assert event["inputs"]["unknown_refs"] == ["0badc0de0badc0de"]
    assert results["fix"][1]["inputs"]["fixed"] == [{"ref": "slow-release", "fixed_by": engine.fix[:9]}]
    # A new commit on top of the fix descends from it: it passes too.
    write(engine.repo / "app.txt", "v4\n")
    git(engine.repo, "commit", "-q", "-am", "after the fix")
    after = git(engine.repo, "rev-parse", "HEAD")
    execution, _ = engine.build(after)
    assert engine.gates(execution, after, "beta")["blocklist"].result == "pass"


def test_an_org_config_that_becomes_invalid_makes_the_gate_wait_naming_the_file_and_line(engine: Engine) -> None:
    execution, _ = engine.build(engine.v1)
    write(engine.org / "shop.yaml", SHOP + "blocklist:\n  packages:\n    - {name: libfoo, reason: x, versions: nope}\n")
    blocklist = engine.gates(execution, engine.v1, "beta")["blocklist"]
    assert (blocklist.result, blocklist.code) == ("wait", "config_error")
    assert blocklist.reason.startswith(f"the org config is invalid: {engine.org / 'shop.yaml'}:7: blocklist entry "
                                       "'libfoo': versions 'nope' is not a PEP 440 specifier set")
    # Fixed: the gate judges again.
    engine.org_files(root_blocklist="", shop_blocklist="")
    assert engine.gates(execution, engine.v1, "beta", NOW + timedelta(seconds=10))["blocklist"].result == "pass"


def baked(engine: Engine, commit: str, at: datetime) -> None:
    """`commit`'s artifact passed prod's bake on cell-1 at `at`."""
    execution, answer = engine.build(commit)
    assert answer.ok, answer.reason
    run = engine.store.start_stage_run(execution, "prod", now=at)
    engine.store.record_bake_passed(run.id, ["cell-1"], now=at)


def plan(engine: Engine, replacing: str, at: datetime, to: str | None = None) -> RollbackPlanAnswer:
    answer: RollbackPlanAnswer = engine.env(f"{PIPELINE}-rollback", "plan").run(
        engine.activities.plan_rollback, RollbackPlanRequest(PIPELINE, "prod", replacing[:12], to, format_time(at)))
    return answer


def fix_failed_on_cell_1(engine: Engine) -> None:
    """v1 then the regression baked on prod's cell-1; the fix's install hook then failed there."""
    baked(engine, engine.v1, NOW)
    baked(engine, engine.bad, NOW + timedelta(minutes=10))
    execution, answer = engine.build(engine.fix)
    assert answer.ok
    for host in ("127.0.0.1:9401", "127.0.0.1:9402"):
        key = f"{execution}/{host}/install"
        start = engine.store.begin_hook_run(key, execution=execution, pipeline=PIPELINE, stage="prod", target="cell-1",
                                            host=host, hook="install", artifact=engine.fix[:12], now=NOW)
        engine.store.finish_hook_run(key, start.run.attempt, exit_code=1, timed_out=False, duration_ms=5, now=NOW)


def test_a_rollback_never_restores_a_blocklisted_artifact(engine: Engine) -> None:
    fix_failed_on_cell_1(engine)
    at = NOW + timedelta(minutes=30)
    [target] = plan(engine, engine.fix, at).targets
    assert (target.target, target.artifact) == ("cell-1", engine.bad[:12])  # the newest good one
    # The regression is blocklisted: the rollback goes to the one before it.
    engine.org_files(root_blocklist=f"blocklist:\n  git_refs:\n    - {{ref: '{engine.bad}', reason: slow}}\n",
                     shop_blocklist="")
    [target] = plan(engine, engine.fix, at).targets
    assert (target.artifact, target.commit) == (engine.v1[:12], engine.v1)
    refused = plan(engine, engine.fix, at, to=engine.bad[:12])
    assert (refused.targets, refused.refused) == ([], f"{engine.bad[:12]} is blocklisted")
    # An active override of prod's blocklist lets the rollback restore it again.
    engine.store.put_override(grant("blocklist", pipeline=PIPELINE, stage="prod", actor="dana",
                                    reason="the regression is the lesser harm", now=at))
    [target] = plan(engine, engine.fix, at + timedelta(seconds=1)).targets
    assert target.artifact == engine.bad[:12]


def test_a_plan_from_inputs_read_ahead_judges_the_blocklist_and_the_content_when_it_is_made(engine: Engine) -> None:
    """A baking stage reads its rollback plan's inputs ahead (rollback_inputs.py); what may change
    meanwhile is judged when the plan is made: a blocklist entry added since, content corrupted."""
    fix_failed_on_cell_1(engine)
    at = NOW + timedelta(minutes=30)
    activities = engine.activities
    inputs = read_inputs(engine.store, activities.artifacts, PIPELINE, "prod", engine.fix[:12])
    request = RollbackPlanRequest(PIPELINE, "prod", engine.fix[:12], None, format_time(at))
    assert activities._plan_rollback(request, inputs) == plan(engine, engine.fix, at)  # as if read now
    [target] = activities._plan_rollback(request, inputs).targets
    assert target.artifact == engine.bad[:12]
    engine.org_files(root_blocklist=f"blocklist:\n  git_refs:\n    - {{ref: '{engine.bad}', reason: slow}}\n",
                     shop_blocklist="")
    [target] = activities._plan_rollback(request, inputs).targets
    assert target.artifact == engine.v1[:12]  # the entry added after the read counts
    engine.org_files(root_blocklist="", shop_blocklist="")
    record = activities.artifacts.record(engine.bad[:12])
    assert record is not None
    activities.artifacts.content_path(record.sha256).write_bytes(b"not what was packed")
    [target] = activities._plan_rollback(request, inputs).targets
    assert target.artifact == engine.v1[:12]  # corrupted after the read: not restored
    other = read_inputs(engine.store, activities.artifacts, PIPELINE, "prod", engine.v1[:12])
    assert activities._plan_rollback(request, other) == plan(engine, engine.fix, at)  # another artifact's: read again
