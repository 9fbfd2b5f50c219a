"""The policy gate's fleet rules (engine.md, `policy`: "fleet rules against the heads of the
engine's other pipelines"): the policy activity checks the artifact's pipeline.yaml together with
the newest valid definitions the poller stored for the engine's other pipelines, so that two
pipelines sharing a host or a name fail `single-release-process` when the org enforces it.
Temporal's ActivityEnvironment, a real store, real git repositories, the real checker."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.testing import ActivityEnvironment
from workflow_helpers import git, write

from pipewarden.engine.activities.engine import EngineActivities, _as_yaml
from pipewarden.engine.contract import PolicyAnswer, PolicyRequest
from pipewarden.engine.store import EngineStore
from pipewarden.load.pipeline import load_pipeline_bytes

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)

PIPELINE = """apiVersion: pipewarden/v1
kind: Pipeline
metadata: {name: NAME, team: demo}
build:
  commands: ["mkdir -p dist"]
  artifact: dist/
stages:
  - name: beta
    type: preprod
    targets: [{name: beta-cell, hosts: [HOSTS]}]
    deploy:
      hooks: {install: ./install.sh}
"""

ORG = """apiVersion: pipewarden/v1
kind: OrgConfig
metadata: {name: acme, owners: [ops]}
teams: [demo]
rules:
  single-release-process: {level: LEVEL}
"""


def pipeline(name: str, *hosts: str) -> str:
    return PIPELINE.replace("NAME", name).replace("HOSTS", ", ".join(f'"{h}"' for h in hosts))


def org_config(tmp_path: Path, level: str = "enforce") -> str:
    folder = tmp_path / "org"
    write(folder / "acme.yaml", ORG.replace("LEVEL", level))
    return str(folder)


def repository(path: Path, text: str) -> tuple[Path, str]:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test Dev")
    git(path, "config", "user.email", "dev@example.com")
    write(path / "pipeline.yaml", text)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "v1")
    return path, git(path, "rev-parse", "HEAD")


def stored(store: EngineStore, name: str, repo: Path, commit: str, text: str) -> None:
    """What the poller records of a pipeline: its source and its newest valid definition."""
    document = load_pipeline_bytes("pipeline.yaml", text.encode()).document
    assert isinstance(document, dict)
    store.set_pipeline_source(name, repo=str(repo), branch="main", path="pipeline.yaml", now=NOW)
    store.set_definition(name, document, commit=commit, team="demo", org="acme", now=NOW)


def check(activities: EngineActivities, name: str, repo: Path, commit: str, number: int = 1) -> PolicyAnswer:
    """The policy gate before the build of execution NAME-NUMBER."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"{name}-{number}", activity_id="1")
    answer: PolicyAnswer = env.run(activities.policy_check, PolicyRequest(
        f"{name}-{number}", name, str(repo), commit, "pipeline.yaml", "2026-12-01T15:00:00.000Z"))
    return answer


def gate_event(store: EngineStore, execution: str) -> dict[str, Any]:
    [event] = store.events(execution=execution, types=["gate"])
    return dict(event.data)


def test_a_pipeline_sharing_a_host_with_another_fails_its_policy_gate(tmp_path: Path) -> None:
    shop_text, cart_text = pipeline("shop", "127.0.0.1:9901"), pipeline("cart", "127.0.0.1:9902", "127.0.0.1:9901")
    shop, shop_commit = repository(tmp_path / "shop", shop_text)
    cart, cart_commit = repository(tmp_path / "cart", cart_text)
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        activities = EngineActivities(store, tmp_path / "state", org_config=org_config(tmp_path))
        # Alone in the engine, shop passes.
        stored(store, "shop", shop, shop_commit, shop_text)
        store.create_execution("shop", shop_commit, trigger="poll", now=NOW)
        assert check(activities, "shop", shop, shop_commit).gate.result == "pass"
        assert gate_event(store, "shop-1")["inputs"]["others"] == []
        # cart deploys to one of shop's hosts: its gate fails, naming the rule, the host and shop.
        stored(store, "cart", cart, cart_commit, cart_text)
        store.create_execution("cart", cart_commit, trigger="poll", now=NOW)
        answer = check(activities, "cart", cart, cart_commit)
        assert (answer.gate.result, answer.gate.code, answer.document) == ("fail", "enforce_findings", None)
        where = f"{shop}@main:pipeline.yaml"
        assert answer.gate.reason == (
            "1 enforce finding: single-release-process at stages[0].targets[0].hosts[1]: host 127.0.0.1:9901 is "
            f"also deployed by pipeline 'shop' ({where}); a host belongs to one release process")
        data = gate_event(store, "cart-1")
        assert data["inputs"]["others"] == [where]
        assert [f["rule"] for f in data["inputs"]["enforce"]] == ["single-release-process"]
        # While the clash is at cart's head, shop's next check fails too (the rule names both).
        store.create_execution("shop", shop_commit, trigger="release", now=NOW)
        again = check(activities, "shop", shop, shop_commit, 2)
        assert again.gate.result == "fail" and f"pipeline 'cart' ({cart}@main:pipeline.yaml)" in again.gate.reason


def test_a_pipeline_taken_out_of_the_config_is_no_longer_compared(tmp_path: Path) -> None:
    """The server gives the activities the names its config releases now: a pipeline removed
    from the config keeps its store record but no longer blocks the one that took its host."""
    shop_text, cart_text = pipeline("shop", "127.0.0.1:9901"), pipeline("cart", "127.0.0.1:9901")
    shop, shop_commit = repository(tmp_path / "shop", shop_text)
    cart, cart_commit = repository(tmp_path / "cart", cart_text)
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        stored(store, "shop", shop, shop_commit, shop_text)
        stored(store, "cart", cart, cart_commit, cart_text)
        store.create_execution("cart", cart_commit, trigger="poll", now=NOW)
        both = EngineActivities(store, tmp_path / "state", org_config=org_config(tmp_path), pipelines=["shop", "cart"])
        assert check(both, "cart", cart, cart_commit).gate.result == "fail"
        store.create_execution("cart", cart_commit, trigger="release", now=NOW)
        only_cart = EngineActivities(store, tmp_path / "state", org_config=org_config(tmp_path), pipelines=["cart"])
        answer = check(only_cart, "cart", cart, cart_commit, 2)
        assert answer.gate.result == "pass", answer.gate.reason
        assert gate_event(store, "cart-2")["inputs"]["others"] == []


def test_a_shared_name_fails_and_a_warn_level_lets_a_shared_host_through(tmp_path: Path) -> None:
    shop_text = pipeline("shop", "127.0.0.1:9901")
    shop, shop_commit = repository(tmp_path / "shop", shop_text)
    # A second entry of the engine, named `shop-eu` in the EngineConfig, whose file says `shop`.
    twin, twin_commit = repository(tmp_path / "twin", pipeline("shop", "127.0.0.1:9911"))
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        stored(store, "shop-eu", twin, twin_commit, pipeline("shop", "127.0.0.1:9911"))
        store.create_execution("shop", shop_commit, trigger="poll", now=NOW)
        activities = EngineActivities(store, tmp_path / "state", org_config=org_config(tmp_path))
        answer = check(activities, "shop", shop, shop_commit)
        assert answer.gate.result == "fail"
        assert answer.gate.reason.startswith("1 enforce finding: single-release-process at metadata.name: "
                                             "pipeline name 'shop' is also used by "), answer.gate.reason
    with EngineStore.for_state_dir(tmp_path / "state2") as store:
        stored(store, "cart", twin, twin_commit, pipeline("cart", "127.0.0.1:9901"))
        store.create_execution("shop", shop_commit, trigger="poll", now=NOW)
        activities = EngineActivities(store, tmp_path / "state2", org_config=org_config(tmp_path, "warn"))
        assert check(activities, "shop", shop, shop_commit).gate.result == "pass"


def test_a_stored_definition_reads_back_as_the_same_document() -> None:
    document: dict[str, Any] = {
        "apiVersion": "pipewarden/v1", "kind": "Pipeline",
        "metadata": {"name": "shop", "team": "demo", "description": "caf\u00e9 \U0001f600 \x85 \u2028 \x7f \"q\" \\"},
        "build": {"commands": ["echo 'a: b' # not a comment", "{x}", "- y"], "artifact": "dist/"},
        "stages": [{"name": "beta", "type": "preprod", "targets": [{"name": "c", "hosts": ["h:1"]}],
                    "deploy": {"hooks": {"install": "./i.sh"}}}],
    }
    loaded = load_pipeline_bytes("x.yaml", _as_yaml(document))
    assert loaded.valid, loaded.invalid
    assert loaded.document == document


def test_the_other_heads_are_loaded_once_per_content(tmp_path: Path) -> None:
    """Every entry round checks the policy again: the other pipelines' heads are loaded once and
    kept while they are heads; a new head of one is loaded and fails the gate as it should."""
    shop_text, cart_text = pipeline("shop", "127.0.0.1:9901"), pipeline("cart", "127.0.0.1:9902")
    shop, shop_commit = repository(tmp_path / "shop", shop_text)
    cart, cart_commit = repository(tmp_path / "cart", cart_text)
    with EngineStore.for_state_dir(tmp_path / "state") as store:
        activities = EngineActivities(store, tmp_path / "state", org_config=org_config(tmp_path))
        stored(store, "shop", shop, shop_commit, shop_text)
        stored(store, "cart", cart, cart_commit, cart_text)
        first = activities._others("cart", f"{cart}@main:pipeline.yaml")
        again = activities._others("cart", f"{cart}@main:pipeline.yaml")
        where = f"{shop}@main:pipeline.yaml"
        assert list(first) == [where] and again[where] is first[where]  # the same loaded file
        # shop's head moves onto cart's host: loaded anew, and cart's gate now fails
        moved = pipeline("shop", "127.0.0.1:9902")
        stored(store, "shop", shop, shop_commit, moved)
        assert activities._others("cart", f"{cart}@main:pipeline.yaml")[where] is not first[where]
        store.create_execution("cart", cart_commit, trigger="poll", now=NOW)
        assert check(activities, "cart", cart, cart_commit).gate.result == "fail"
        assert len(activities._loaded_others) == 1  # the old head is not kept
