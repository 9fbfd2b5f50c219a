"""Generate a deterministic, realistic fleet of pipeline repositories for benchmarks.

    python benchmarks/generate_fleet.py OUT_DIR COUNT [--seed N] [--invalid-share 0.03]

Each repository gets `pipeline.yaml` (some under `.pipewarden/`), with a realistic spread:
1-3 preprod stages, 1-4 prod waves, optional canary, windows, alarms, synthetics, datapoints,
and a few percent of invalid files (typos, bad durations, broken YAML). Also writes
`inventory.yaml` and an org tree under OUT_DIR/org (root, 3 orgs, 2 sub-orgs, 40 teams).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

TEAMS = [f"team-{i:02d}" for i in range(40)]
ORGS = {"retail": TEAMS[:12], "platform": TEAMS[12:22], "ads": TEAMS[22:30], "retail-payments": TEAMS[30:36],
        "platform-data": TEAMS[36:]}
PARENTS = {"retail": "acme", "platform": "acme", "ads": "acme", "retail-payments": "retail", "platform-data": "platform"}


def stage_yaml(rng: random.Random, name: str, kind: str, index: int, host_base: int, canary: bool) -> str:
    targets = 1 if canary or kind == "preprod" else rng.choice([1, 1, 2, 3])
    lines = [f"  - name: {name}", f"    type: {kind}"]
    if canary:
        lines.append("    canary: true")
    if kind == "preprod" and rng.random() < 0.5:
        lines.append("    production_config: true")
    target_items = []
    for t in range(targets):
        hosts = ", ".join(f'"10.{host_base % 250}.{index}.{h + t * 4}:{8000 + host_base // 250}"' for h in range(rng.choice([1, 2, 3])))
        target_items.append(f"{{name: {name}-{t}, hosts: [{hosts}]}}")
    lines.append(f"    targets: [{', '.join(target_items)}]")
    hooks = "{start: ./start.sh, validate: ./validate.sh}" if rng.random() < 0.85 else "{install: ./install.sh}"
    healthy = rng.choice(["50%", "66%", "75%", "80.5%", 1, 2])
    lines.append(f"    deploy: {{hooks: {hooks}, min_healthy: {healthy}}}")
    if kind == "preprod" and rng.random() < 0.8:
        lines.append("    tests:")
        for test in rng.sample(["integration", "load", "security", "browser", "smoke"], rng.choice([1, 2, 3])):
            lines.append(f"      - {{name: {test}, type: {test}, command: make {test}}}")
    if kind == "prod":
        if rng.random() < 0.8:
            lines.append("    window: business-hours")
        if rng.random() < 0.85:
            lines.append("    alarms: [errors, latency]")
        bake = rng.choice(["30m", "1h", "90m", "15m", "3600s", "2h", "0m"])
        if canary and rng.random() < 0.6:
            lines.append(f"    bake:\n      duration: {bake}\n      datapoints:\n"
                         "        positive: {source: prometheus, query: 'sum(rate(ok[5m]))'}\n"
                         "        negative: {source: prometheus, query: 'sum(rate(err[5m]))'}\n"
                         f"        min_positive: {rng.choice([1000, 3000, 5000])}\n        max_negative: 0")
        else:
            lines.append(f"    bake: {{duration: {bake}}}")
        lines.append(f"    rollback: {rng.choice(['automatic', 'automatic', 'manual'])}")
    if rng.random() < 0.15:
        lines.append("    promotion: manual")
    return "\n".join(lines)


def pipeline_yaml(rng: random.Random, index: int) -> str:
    team = rng.choice(TEAMS)
    name = f"svc-{index:06d}"
    tz = rng.choice(["America/Los_Angeles", "Europe/Berlin", "Asia/Tokyo", "UTC"])
    start, end = rng.choice([("09:00", "17:00"), ("08:00", "16:00"), ("22:00", "06:00"), ("10:00", "15:30")])
    stages = []
    for p in range(rng.choice([0, 1, 2, 3])):
        stages.append(stage_yaml(rng, f"pre-{p}", "preprod", len(stages), index, False))
    prod_count = rng.choice([1, 2, 3, 4])
    for w in range(prod_count):
        stages.append(stage_yaml(rng, f"prod-{w}", "prod", len(stages), index, w == 0 and rng.random() < 0.7))
    unit = "\n    - {name: unit, type: unit, command: make test}" if rng.random() < 0.9 else ""
    return f"""apiVersion: pipewarden/v1
kind: Pipeline
metadata:
  name: {name}
  team: {team}
  description: generated service {index}
build:
  commands: ["make build"]
  tests:{unit or ' []'}
    {"- {name: lint, type: style, command: make lint}" if unit else ""}
windows:
  business-hours: {{timezone: {tz}, days: [mon, tue, wed, thu, fri], start: "{start}", end: "{end}"}}
alarms:
  errors:
    metric: {{source: prometheus, query: 'sum(rate(http_errors_total[1m]))'}}
    threshold: 5
    comparison: ">"
    periods: 3
  latency:
    metric: {{source: prometheus, query: 'histogram_quantile(0.99, rate(latency_bucket[5m]))'}}
    threshold: 0.5
    comparison: ">="
synthetics:
  - name: health
    interval: {rng.choice(["30s", "1m", "5m"])}
    requests:
      - {{method: GET, path: /health, expect_status: 200}}
stages:
""" + "\n".join(stages) + "\n"


def corrupt(rng: random.Random, text: str) -> str:
    kind = rng.choice(["typo", "duration", "yaml", "window"])
    if kind == "typo":
        return text.replace("rollback:", "rolback:", 1) if "rollback:" in text else text.replace("commands:", "comands:")
    if kind == "duration":
        return text.replace("interval: ", "interval: every ", 1)
    if kind == "yaml":
        return text.replace("stages:\n", "stages:\n  - [broken\n", 1)
    return text.replace("window: business-hours", "window: nights", 1) if "window: business" in text else text + "oops: 1\n"


def org_tree(out: Path) -> None:
    org = out / "org"
    org.mkdir(parents=True, exist_ok=True)
    (org / "acme.yaml").write_text(
        "apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {name: acme}\n"
        "rules:\n  requires-preprod: {level: enforce, locked: true}\n  alarm-gating: {level: enforce}\n"
    )
    for name, teams in ORGS.items():
        (org / f"{name}.yaml").write_text(
            f"apiVersion: pipewarden/v1\nkind: OrgConfig\nmetadata: {{name: {name}, parent: {PARENTS[name]}}}\n"
            f"teams: [{', '.join(teams)}]\n"
            "rules:\n  canary-bake-time: {level: warn, enforce_from: 2027-01-15, params: {min_minutes: 45}}\n"
            "exceptions:\n"
            f"  - {{rule: auto-rollback, teams: [{teams[0]}], reason: tooling, approved_by: lead, permanent: true}}\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--invalid-share", type=float, default=0.03)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    repos = args.out / "repos"
    inventory = ["apiVersion: pipewarden/v1", "kind: Inventory", "repos:"]
    for index in range(args.count):
        text = pipeline_yaml(rng, index)
        if rng.random() < args.invalid_share:
            text = corrupt(rng, text)
        where = repos / f"svc-{index:06d}"
        target = where / ".pipewarden" / "pipeline.yaml" if rng.random() < 0.2 else where / "pipeline.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        inventory.append(f"  - {{name: svc-{index:06d}, path: repos/svc-{index:06d}, team: {rng.choice(TEAMS)}}}")
    (args.out / "inventory.yaml").write_text("\n".join(inventory) + "\n")
    org_tree(args.out)


if __name__ == "__main__":
    main()
