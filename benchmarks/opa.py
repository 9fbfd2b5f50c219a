"""Documents per second with `--opa-url` next to the embedded engine (issue 16), side by side.

    python benchmarks/opa.py [--size 2000] [--rounds 3] [--workdir /tmp/bench-opa]

The OPA side is tests/opa_server.py, the OPA-REST-protocol server whose evaluation is OPA's own
evaluator (`opa-golib-python-bindings`; no `opa` binary can be installed here), in a process of
its own on a loopback port. The fleet is benchmarks/generate_fleet.py's (SIZE pipelines, its org
tree, a fixed --now). Two measures, each side by side per round (the order alternating between
rounds so that neither side always goes first):

1. `check` end to end: `pipewarden check FLEET --org-config ORG --format json`, once with the
   embedded engine and `--no-cache`, once with `--opa-url` (which never uses the cache); wall time
   around the process; documents per second = SIZE / wall. The two JSON outputs are compared byte
   for byte once, before the rounds. Worker processes as `check` makes them (2 on 2 cores).
2. The engines alone, in this process, one thread: `RuleEngine.run` on every valid document of
   the fleet with its org's enabled rules and params (the embedded `RegorusEngine`, and
   `OpaRuleEngine` with its one HTTP request per document); documents per second.
3. The same from THREADS threads at once, each with its engine from `engine_for` (the embedded
   engine holds the interpreter lock while it evaluates; the OPA engines of a process share one
   client, at most 8 requests in flight over kept-alive connections): what a threaded caller,
   such as the release engine's policy gate or the decision API, gets.

Prints a Markdown table (medians and ranges, embedded / OPA ratios) and the load average before
and after (`os.getloadavg`, what `uptime` shows).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOW = "2026-11-26T10:00:00Z"
sys.path.insert(0, str(ROOT / "tests"))  # the OPA-protocol test server


def _check(fleet: Path, extra: list[str], output: Path) -> float:
    """Wall seconds of one `pipewarden check` of the fleet (exit 0 or 1 expected)."""
    command = [sys.executable, "-c", "from pipewarden.cli.main import run; run()", "check", str(fleet / "repos"),
               "--org-config", str(fleet / "org"), "--now", NOW, "--format", "json", "-q", "--output", str(output),
               *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"check failed ({done.returncode}): {done.stderr.strip()}")
    return wall


def _inputs(fleet: Path) -> tuple[Any, list[tuple[str, str, frozenset[str] | None]]]:
    import datetime as dt

    from pipewarden.evaluation.context import build_context
    from pipewarden.load.pipeline import load_pipeline

    context = build_context(str(fleet / "org"), (), dt.datetime.fromisoformat(NOW))
    inputs = []
    for path in sorted((fleet / "repos").rglob("pipeline.yaml")):
        pipeline = load_pipeline(str(path))
        if not pipeline.valid:
            continue
        node = context.node_of(pipeline.team)
        enabled, params_json = context.enabled_params(node)
        document_json = pipeline.json_text if pipeline.json_text is not None else json.dumps(pipeline.document)
        inputs.append((document_json, params_json, enabled))
    return context.catalog, inputs


def _engine_rate(engine: Any, inputs: list[tuple[str, str, frozenset[str] | None]]) -> float:
    start = time.perf_counter()
    for document_json, params_json, enabled in inputs:
        engine.run(document_json, params_json, enabled)
    return len(inputs) / (time.perf_counter() - start)


def _threaded_rate(catalog: Any, inputs: list[tuple[str, str, frozenset[str] | None]], threads: int) -> float:
    from concurrent.futures import ThreadPoolExecutor

    from pipewarden.policy.engine import engine_for

    def share(part: list[tuple[str, str, frozenset[str] | None]]) -> None:
        engine = engine_for(catalog)
        for document_json, params_json, enabled in part:
            engine.run(document_json, params_json, enabled)

    parts = [inputs[k::threads] for k in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(share, parts[:1] * threads))  # warm: each thread makes its engine
        start = time.perf_counter()
        list(pool.map(share, parts))
    return len(inputs) / (time.perf_counter() - start)


def _spread(values: list[float], digits: int = 1) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-opa"))
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    from opa_server import running_server
    from pipewarden.policy.engine import OpaBackend, use_backend
    from pipewarden.policy.opa import OpaRuleEngine
    from pipewarden.policy.regorus import RegorusEngine

    fleet = args.workdir / f"fleet-{args.size}"
    if not (fleet / "repos").is_dir():
        subprocess.run([sys.executable, str(HERE / "generate_fleet.py"), str(fleet), str(args.size)], check=True)
    load_before = os.getloadavg()
    print(f"# benchmarks/opa.py --size {args.size} --rounds {args.rounds}: {platform.node()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load before {load_before}")
    with running_server() as url:
        embedded_json, opa_json = args.workdir / "embedded.json", args.workdir / "opa.json"
        _check(fleet, ["--no-cache"], embedded_json)
        _check(fleet, ["--opa-url", url], opa_json)  # also the upload, before the rounds
        same = embedded_json.read_bytes() == opa_json.read_bytes()
        print(f"check JSON byte-identical on both engines: {same}")
        check_times: dict[str, list[float]] = {"embedded": [], "opa": []}
        for round_ in range(args.rounds):
            sides = [("embedded", ["--no-cache"]), ("opa", ["--opa-url", url])]
            for name, extra in sides if round_ % 2 == 0 else sides[::-1]:
                check_times[name].append(_check(fleet, extra, args.workdir / f"{name}.json"))
        catalog, inputs = _inputs(fleet)
        embedded_engine = RegorusEngine(catalog)
        opa_engine = OpaRuleEngine(catalog, OpaBackend(url))
        for document_json, params_json, enabled in inputs[:50]:  # warm both: prepared queries, connections
            embedded_engine.run(document_json, params_json, enabled)
            opa_engine.run(document_json, params_json, enabled)
        rates: dict[str, list[float]] = {"embedded": [], "opa": []}
        engines = [("embedded", embedded_engine), ("opa", opa_engine)]
        for round_ in range(args.rounds):
            for name, engine in engines if round_ % 2 == 0 else engines[::-1]:
                rates[name].append(_engine_rate(engine, inputs))
        threaded: dict[str, list[float]] = {"embedded": [], "opa": []}
        backends = [("embedded", None), ("opa", OpaBackend(url))]
        for round_ in range(args.rounds):
            for name, backend in backends if round_ % 2 == 0 else backends[::-1]:
                use_backend(backend)
                threaded[name].append(_threaded_rate(catalog, inputs, args.threads))
        use_backend(None)
    load_after = os.getloadavg()
    check_rates = {name: [args.size / t for t in times] for name, times in check_times.items()}
    ratio_check = statistics.median(check_rates["embedded"]) / statistics.median(check_rates["opa"])
    ratio_engine = statistics.median(rates["embedded"]) / statistics.median(rates["opa"])
    print()
    print("| measure | embedded docs/s | --opa-url docs/s | embedded / OPA |")
    print("|---|---:|---:|---:|")
    print(f"| `check` of {args.size} files, end to end (wall s: embedded {_spread(check_times['embedded'], 2)}, "
          f"OPA {_spread(check_times['opa'], 2)}) | {_spread(check_rates['embedded'])} | {_spread(check_rates['opa'])} | "
          f"{ratio_check:.2f} |")
    print(f"| the engine alone, {len(inputs)} valid documents, one thread | {_spread(rates['embedded'])} | "
          f"{_spread(rates['opa'])} | {ratio_engine:.2f} |")
    ratio_threads = statistics.median(threaded["embedded"]) / statistics.median(threaded["opa"])
    print(f"| the engines from {args.threads} threads at once | {_spread(threaded['embedded'])} | "
          f"{_spread(threaded['opa'])} | {ratio_threads:.2f} |")
    print()
    print(f"load average before {load_before}, after {load_after}")


if __name__ == "__main__":
    main()
