"""Record the workflow histories that `test_replay.py` replays (run by hand, not by pytest):

    .venv/bin/python tests/engine/histories/record.py [SCENARIO ...]

Runs representative executions on a fresh dev server with the current workflow code and writes
each workflow's history as JSON beside this file. Re-record only when a release deliberately
starts a new baseline; a change of workflow code must otherwise replay the old histories
unchanged (guard it with `workflow.patched`, docs/engine.md "Changing workflow code"). Adding a
new scenario here is always fine: record it alone by naming it, so the older histories stay as
they were recorded.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from client_helpers import register, run_status, running_engine, wait_for
from workflow_helpers import git, make_repo, write

from pipewarden.engine.activities.engine import engine_sources
from pipewarden.engine.alarms import AlarmEvaluator
from pipewarden.engine.client import EngineClient
from pipewarden.engine.devserver import DevServer
from pipewarden.engine.store import EngineStore

APPROVAL = "    approvals: [{name: qa-lead, type: manual}]\n    promotion: manual\n"

Scenario = Callable[[EngineClient, EngineStore, Path, Path], Awaitable[list[str]]]


async def approved_and_promoted(engine: EngineClient, store: EngineStore, repo: Path, record: Path) -> list[str]:
    execution = (await engine.release("demo-app", actor="dana")).id
    await wait_for("approval wait", run_status(store, execution, "waiting", "beta"))
    await engine.approve(execution, "beta", actor="dana", reason="qa done")
    await wait_for("awaiting promotion", run_status(store, execution, "awaiting_promotion", "beta"))
    await engine.promote(execution, "beta", actor="dana")
    await engine.temporal.get_workflow_handle(execution).result()
    return [execution]


async def automatic_rollback(engine: EngineClient, store: EngineStore, repo: Path, record: Path) -> list[str]:
    first = (await engine.release("demo-app", actor="dana")).id
    await engine.temporal.get_workflow_handle(first).result()
    write(repo / "app.txt", "v2\n")
    write(repo / "hooks" / "validate.sh", "#!/bin/sh\nexit 3\n", executable=True)
    git(repo, "commit", "-qam", "v2 breaks validate")
    second = (await engine.release("demo-app", actor="dana")).id
    await engine.temporal.get_workflow_handle(second).result()
    return [first, second]


async def cancelled_at_approval(engine: EngineClient, store: EngineStore, repo: Path, record: Path) -> list[str]:
    execution = (await engine.release("demo-app", actor="dana")).id
    await wait_for("approval wait", run_status(store, execution, "waiting", "beta"))
    await engine.cancel(execution, actor="dana", reason="not today")
    await engine.temporal.get_workflow_handle(execution).result()
    return [execution]


async def manual_rollback(engine: EngineClient, store: EngineStore, repo: Path, record: Path) -> list[str]:
    first = (await engine.release("demo-app", actor="dana")).id
    await engine.temporal.get_workflow_handle(first).result()
    write(repo / "app.txt", "v2\n")
    git(repo, "commit", "-qam", "v2")
    second = (await engine.release("demo-app", actor="dana")).id
    await engine.temporal.get_workflow_handle(second).result()
    rollback = await engine.rollback("demo-app", "beta", actor="dana", reason="v2 is slow")
    workflows = []  # the two releases' histories are like automatic_rollback-1's: only the rollback's
    async for entry in engine.temporal.list_workflows("WorkflowType = 'RollbackWorkflow'"):
        await engine.temporal.get_workflow_handle(entry.id).result()
        workflows.append(entry.id)
    assert len(workflows) == 1, (rollback, workflows)
    return workflows


GATED = """    window: always
    alarms: [errors]
    bake: {duration: 1s, deadline: 60s, datapoints: {positive: {source: command, command: 'echo 10'},
           negative: {source: command, command: 'if grep -q v2 app.txt; then echo 1; else echo 0; fi'},
           min_positive: 1, max_negative: 0}}
"""
GATED_TOP = """windows:
  always: {timezone: UTC, days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00"}
alarms:
  errors: {metric: {source: command, command: 'echo 0'}, threshold: 1, comparison: '>='}
"""


async def release_gates(engine: EngineClient, store: EngineStore, repo: Path, record: Path) -> list[str]:
    """Issue 14's gates (patches bake-gates and alarm-tripwire): window and alarms at the entry,
    the tripwire beside the deploy, a bake of datapoints; v2's negative rolls it back."""
    text = (repo / "pipeline.yaml").read_text().replace("stages:\n", GATED_TOP + "stages:\n", 1)
    text = text.replace("    bake: {duration: 1s}\n    rollback: automatic\n", "    rollback: automatic\n" + GATED, 1)
    write(repo / "pipeline.yaml", text)
    git(repo, "commit", "-qam", "release gates")
    register(store, repo)
    stop = asyncio.Event()
    evaluator = AlarmEvaluator(store, engine_sources(store, None), None, poll_seconds=1)
    task = asyncio.create_task(evaluator.run(stop, lambda: datetime.now(UTC)))
    try:
        first = (await engine.release("demo-app", actor="dana")).id
        await engine.temporal.get_workflow_handle(first).result()
        write(repo / "app.txt", "v2\n")
        git(repo, "commit", "-qam", "v2 counts a bad request")
        second = (await engine.release("demo-app", actor="dana")).id
        await engine.temporal.get_workflow_handle(second).result()
    finally:
        stop.set()
        await task
    return [first, second]


async def cancelled_mid_deploy(engine: EngineClient, store: EngineStore, repo: Path, record: Path) -> list[str]:
    """Patch stage-deploy: a release whose beta deploy is cancelled while its first hook runs
    (the workflow halts the deploy activity through the store)."""
    hook = repo / "hooks" / "hook.sh"
    write(hook, hook.read_text().replace("#!/bin/sh\n", "#!/bin/sh\nsleep 2\n", 1), executable=True)
    git(repo, "commit", "-qam", "slow hooks")
    execution = (await engine.release("demo-app", actor="dana")).id
    await wait_for("the deploy", run_status(store, execution, "deploying", "beta"))
    await engine.cancel(execution, actor="dana", reason="wrong build")
    await engine.temporal.get_workflow_handle(execution).result()
    return [execution]


SCENARIOS: dict[str, tuple[dict[str, str], Scenario]] = {
    "approved_and_promoted": ({"beta_extra": APPROVAL}, approved_and_promoted),
    "automatic_rollback": ({}, automatic_rollback),
    "cancelled_at_approval": ({"beta_extra": APPROVAL}, cancelled_at_approval),
    "manual_rollback": ({}, manual_rollback),
    "release_gates": ({}, release_gates),
    # patch stage-deploy (a stage's deploy in one activity): recorded alone after it landed
    "stage_deploy_rollback": ({}, automatic_rollback),
    "cancelled_mid_deploy": ({}, cancelled_mid_deploy),
    # patches stage-entry and bake-round (a stage's entry round and bake round in one activity each)
    "entry_round_promoted": ({"beta_extra": APPROVAL}, approved_and_promoted),
    "entry_round_rollback": ({}, automatic_rollback),
    "entry_round_release_gates": ({}, release_gates),
    "entry_round_manual_rollback": ({}, manual_rollback),
    # patch stage-rollback (an automatic rollback in one activity)
    "stage_rollback": ({}, automatic_rollback),
    "stage_rollback_release_gates": ({}, release_gates),
    # patch bake-stage (a watched bake in one activity)
    "bake_stage_release_gates": ({}, release_gates),
    # patch rollback-finishes (a failed bake's rollback also ends the execution)
    "rollback_finishes_release_gates": ({}, release_gates),
    # patch bake-rolls-back (a failed bake's rollback inside its bake activity)
    "bake_rolls_back_release_gates": ({}, release_gates),
}


async def record_all(server: DevServer, root: Path, names: list[str]) -> None:
    for name in names:
        pipeline, scenario = SCENARIOS[name]
        folder = root / name
        folder.mkdir()
        record = folder / "record.txt"
        repo = make_repo(folder, record, stages=2, **pipeline)
        state = folder / "state"
        with EngineStore.for_state_dir(state) as store:
            register(store, repo)
            async with running_engine(server, store, state) as engine:
                ids = await scenario(engine, store, repo, record)
                for number, ident in enumerate(ids, start=1):
                    history = await engine.temporal.get_workflow_handle(ident).fetch_history()
                    target = HERE / (f"{name}-{number}.json" if len(ids) > 1 else f"{name}.json")
                    target.write_text(history.to_json() + "\n")
                    print(f"{target.name}: {ident}, {len(history.events)} events")


def main() -> None:
    names = sys.argv[1:] or list(SCENARIOS)
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        sys.exit(f"unknown scenario(s) {', '.join(unknown)}: one of {', '.join(SCENARIOS)}")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        server = DevServer(db_file=root / "temporal.db", log_file=root / "temporal.log").start()
        try:
            asyncio.run(record_all(server, root, names))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
