"""A generated fleet for the OPA conformance tests (tests/test_opa_conformance.py): pipelines
that between them pass and fail every built-in rule (and the example org's custom rule), under an
org tree whose nodes set params away from the defaults, with the numbers where doubles and exact
decimals part (two-decimal percentages, long fractions in the pipelines, thousandths).

`write_fleet(root, count, seed)` writes `root/repos/<name>/pipeline.yaml` and `root/org/*.yaml`
and returns the pipeline folder and the org folder. Deterministic for a seed.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

TEAMS = ["cart", "search", "identity", "payments", "ads", "data", "mobile", "edge"]
TEST_TYPES = ["unit", "style", "coverage", "integration", "load", "security", "browser", "fault-injection", "smoke",
              "other"]
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# min_healthy values: counts, and percentages on, off and far off the grids the rules compare on.
PERCENTS = ["0%", "50%", "66%", "66.6%", "66.66%", "66.67%", "66.599999999999999999%", "66.600000000000000001%",
            "75%", "80.5%", "33.33%", "33.34%", "100%", "100.0%", "12.5%", "99.99%"]
DURATIONS = ["0m", "1m", "59s", "15m", "29m", "30m", "1799s", "1800s", "45m", "1h", "90m", "2h", "3600s", "1d"]


def _hosts(rng: random.Random, index: int, stage: int, target: int, shared: bool) -> list[str]:
    if shared:  # a host another pipeline also deploys to: single-release-process
        return [f"10.0.{stage}.{target}:8080"]
    return [f"10.{index % 250}.{stage}.{target * 16 + h}:{8000 + index // 250}" for h in range(rng.choice([1, 2, 3, 3, 4, 7]))]


def _tests(rng: random.Random) -> list[dict[str, str]]:
    chosen = rng.sample(TEST_TYPES, rng.choice([0, 1, 2, 3, 4]))
    return [{"name": f"t-{kind}", "type": kind, "command": f"make {kind}"} for kind in chosen]


def _stage(rng: random.Random, index: int, position: int, kind: str, canary: bool, shared: bool) -> dict[str, Any]:
    targets = 1 if canary and rng.random() < 0.7 else rng.choice([1, 1, 2, 3, 4, 6])
    stage: dict[str, Any] = {
        "name": f"{kind}-{position}",
        "type": kind,
        "targets": [{"name": f"{kind}-{position}-{t}", "hosts": _hosts(rng, index, position, t, shared and t == 0)}
                    for t in range(targets)],
    }
    if canary:
        stage["canary"] = True
    deploy: dict[str, Any] = {}
    if rng.random() < 0.9:
        hooks = rng.sample(["stop", "install", "start", "validate"], rng.choice([0, 1, 2, 3, 4]))
        deploy["hooks"] = {hook: f"./deploy/{hook}.sh" for hook in hooks}
    if rng.random() < 0.85:
        deploy["min_healthy"] = rng.choice(PERCENTS) if rng.random() < 0.6 else rng.choice([0, 1, 2, 3, 5, 13])
    if deploy:
        stage["deploy"] = deploy
    if rng.random() < 0.7:
        stage["tests"] = _tests(rng)
    if kind == "preprod" and rng.random() < 0.5:
        stage["production_config"] = rng.random() < 0.8
    if kind == "prod":
        if rng.random() < 0.75:
            stage["window"] = rng.choice(["day", "night", "weekend", "always"])
        if rng.random() < 0.8:
            stage["alarms"] = rng.sample(["errors", "latency", "saturation"], rng.choice([0, 1, 2, 3]))
        if rng.random() < 0.85:
            bake: dict[str, Any] = {"duration": rng.choice(DURATIONS)}
            if canary and rng.random() < 0.6:
                bake["datapoints"] = {
                    "positive": {"source": "prometheus", "query": "sum(rate(ok[5m]))"},
                    "min_positive": rng.choice([0, 100, 999, 1000, 3000, 5000]),
                }
                if rng.random() < 0.7:
                    bake["datapoints"]["negative"] = {"source": "prometheus", "query": "sum(rate(err[5m]))"}
                    bake["datapoints"]["max_negative"] = rng.choice([0, 0, 1, 5, 50])
            stage["bake"] = bake
        if rng.random() < 0.85:
            stage["rollback"] = rng.choice(["automatic", "automatic", "manual"])
    if rng.random() < 0.15:
        stage["promotion"] = "manual"
    if rng.random() < 0.1:
        stage["approvals"] = [{"name": "qa", "type": "manual"}]
    return stage


def pipeline(rng: random.Random, index: int) -> dict[str, Any]:
    """One pipeline document (a mapping), valid against the pipeline schema."""
    shared_name = rng.random() < 0.03  # another pipeline of that name: single-release-process
    shared_host = rng.random() < 0.04
    stages = [_stage(rng, index, p, "preprod", False, False) for p in range(rng.choice([0, 1, 1, 2, 3]))]
    waves = rng.choice([1, 1, 2, 3, 4])
    canary = rng.random() < 0.7
    for wave in range(waves):
        stages.append(_stage(rng, index, len(stages), "prod", canary and wave == 0, shared_host and wave == waves - 1))
    document: dict[str, Any] = {
        "apiVersion": "pipewarden/v1",
        "kind": "Pipeline",
        "metadata": {"name": "svc-shared" if shared_name else f"svc-{index:05d}", "team": rng.choice(TEAMS)},
        "build": {"commands": ["make build"], "tests": _tests(rng)},
        "windows": {
            "day": {"timezone": rng.choice(["UTC", "Europe/Berlin", "America/Los_Angeles"]),
                    "days": sorted(rng.sample(DAYS[:5], rng.choice([3, 4, 5])), key=DAYS.index),
                    "start": rng.choice(["08:00", "09:00", "09:30"]), "end": rng.choice(["16:00", "17:00", "18:30"])},
            "night": {"timezone": "UTC", "days": ["mon", "tue", "wed"], "start": "22:00", "end": "06:00"},
            "weekend": {"timezone": "UTC", "days": ["sat", "sun"], "start": "10:00", "end": "14:00"},
            "always": {"timezone": "UTC", "days": list(DAYS), "start": "00:00", "end": "00:00"},
        },
        "alarms": {
            name: {"metric": {"source": "prometheus", "query": f"sum(rate({name}[1m]))"}, "threshold": 5,
                   "comparison": ">", "periods": 2}
            for name in ("errors", "latency", "saturation")
        },
        "stages": stages,
    }
    if rng.random() < 0.8:
        document["synthetics"] = [{
            "name": "health", "interval": rng.choice(["30s", "1m", "5m", "90s", "1h"]),
            **({"requests": [{"method": "GET", "path": "/health", "expect_status": 200}]} if rng.random() < 0.85 else {}),
        }]
    return document


# Each org node sets params away from the defaults, on the grids the params schemas allow.
ORG_FILES = {
    "acme": {"rules": {"requires-preprod": {"level": "enforce", "params": {"min_stages": 1}},
                       "alarm-gating": {"level": "enforce", "params": {"min_alarms": 2}},
                       "single-release-process": {"level": "enforce"}}},
    "retail": {"parent": "acme", "teams": ["cart", "payments"],
               "rules": {"min-healthy-hosts": {"params": {"min_percent": 66.67}},
                         "progressive-rollout": {"params": {"max_fraction": 0.29}},
                         "canary-bake-time": {"params": {"min_minutes": 30}},
                         "deployment-window": {"level": "enforce",
                                               "params": {"days": ["mon", "tue", "wed", "thu"], "earliest": "08:30",
                                                          "latest": "17:00"}}}},
    "platform": {"parent": "acme", "teams": ["search", "identity", "data"],
                 "rules": {"min-healthy-hosts": {"params": {"min_percent": 33.34}},
                           "progressive-rollout": {"params": {"max_fraction": 0.333}},
                           "build-tests": {"params": {"required_types": ["unit", "coverage"]}},
                           "canary-datapoints": {"params": {"min_positive": 1000, "max_negative": 1}},
                           "synthetic-monitoring": {"params": {"max_interval": "1m"}},
                           "full-automation": {"level": "warn"}}},
    "growth": {"parent": "acme", "teams": ["ads", "mobile", "edge"],
               "rules": {"min-healthy-hosts": {"params": {"min_percent": 12.5}},
                         "prod-bake-time": {"params": {"min_minutes": 45}},
                         "canary-first": {"params": {"max_targets": 2}},
                         "load-and-security-tests": {"params": {"required_types": ["load", "security", "smoke"]}},
                         "preprod-tests": {"params": {"required_types": ["integration", "browser"]}}}},
}


def write_org(folder: Path) -> Path:
    """The org tree of ORG_FILES under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, spec in ORG_FILES.items():
        metadata: dict[str, Any] = {"name": name}
        if "parent" in spec:
            metadata["parent"] = spec["parent"]
        body: dict[str, Any] = {"apiVersion": "pipewarden/v1", "kind": "OrgConfig", "metadata": metadata}
        if "teams" in spec:
            body["teams"] = spec["teams"]
        body["rules"] = spec["rules"]
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return folder


def write_fleet(root: Path, count: int, seed: int = 16) -> tuple[Path, Path]:
    """`count` pipelines under `root/repos` and the org tree under `root/org`."""
    rng = random.Random(seed)
    repos = root / "repos"
    for index in range(count):
        folder = repos / f"svc-{index:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pipeline.yaml").write_text(yaml.safe_dump(pipeline(rng, index), sort_keys=False))
    return repos, write_org(root / "org")
