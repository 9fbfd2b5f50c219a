"""Per-pipeline CPU of each stage of the per-file work, measured in one process.

    python benchmarks/breakdown.py [--fleet /tmp/pipewarden-bench/fleet-10000] [--files 1000]

Process time (not wall time, so that other load on the machine matters less), best of five
passes over the first `--files` pipeline files of a generated fleet (made by run.py, or here
if missing), in microseconds per file. Prints a Markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import marshal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def best_per_file(work: Callable[[], Any], count: int) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        work()
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fleet", type=Path, default=Path("/tmp/pipewarden-bench/fleet-10000"))
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    if not (args.fleet / "inventory.yaml").exists():
        subprocess.run([sys.executable, str(HERE / "generate_fleet.py"), str(args.fleet), "10000"], check=True)

    from pipewarden.evaluation import pool
    from pipewarden.evaluation.context import EvalContext
    from pipewarden.evaluation.document import evaluate_document
    from pipewarden.evaluation.engines import rule_engine
    from pipewarden.evaluation.levels import document_finding_records
    from pipewarden.load import yamlsafe
    from pipewarden.load.pipeline import load_pipeline, semantic_issues
    from pipewarden.load.validate import is_valid
    from pipewarden.model.evaluated import to_worker_record
    from pipewarden.orgs.tree import load_org_tree
    from pipewarden.policy.catalog import load_catalog

    gc.disable()  # as in the workers
    paths = sorted(str(p) for p in (args.fleet / "repos").rglob("pipeline.yaml"))[: args.files]
    catalog = load_catalog()
    today = dt.date(2026, 11, 26)
    context = EvalContext(catalog, load_org_tree(str(args.fleet / "org"), catalog, today), today)
    pool._context = context
    contents = [yamlsafe.read_limited(p) for p in paths]
    texts = [c.decode() for c in contents]
    parsable = []
    for text in texts:
        try:
            yamlsafe.parse_yaml(text)
            parsable.append(text)
        except Exception:  # noqa: BLE001, S112 - broken files of the fleet are measured elsewhere
            continue

    def compose(text: str) -> Any:
        loader = yamlsafe._Composer(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()

    nodes = [compose(t) for t in parsable]
    documents = [yamlsafe._NodeWalker().build(n, may_alias=False).value for n in nodes]
    valid = [f for f in (load_pipeline(p) for p in paths) if f.valid]
    evaluated = [evaluate_document(f, context) for f in valid]
    engine = rule_engine(catalog)
    enabled, params = context.enabled_params(context.node_of(valid[0].team))
    query = engine._query(enabled)
    inputs = ['{"pipeline": ' + str(f.json_text) + ', "params": ' + params + "}" for f in valid]

    def engine_run() -> None:
        for text in inputs:
            engine._engine.set_input_json(text)
            engine._engine.eval_rule_as_json(query)

    rows = [
        ("read the file (stat, open, read)", best_per_file(lambda: [yamlsafe.read_limited(p) for p in paths], len(paths))),
        ("content hash (SHA-256)", best_per_file(lambda: [hashlib.sha256(c).hexdigest() for c in contents], len(contents))),
        ("deep-nesting guard", best_per_file(lambda: [yamlsafe._may_nest_deeply(t) for t in texts], len(texts))),
        ("libyaml composition (with our tag hook)", best_per_file(lambda: [compose(t) for t in parsable], len(parsable))),
        ("walk: values and line map", best_per_file(
            lambda: [yamlsafe._NodeWalker().build(n, may_alias=False) for n in nodes], len(nodes))),
        ("JSON serialisation (the engine's input)", best_per_file(
            lambda: [json.dumps(d, allow_nan=False) for d in documents], len(documents))),
        ("schema gate", best_per_file(lambda: [is_valid("pipeline", d) for d in documents], len(documents))),
        ("reference checks", best_per_file(lambda: [list(semantic_issues(f.document)) for f in valid], len(valid))),
        ("engine: set the input", best_per_file(
            lambda: [engine._engine.set_input_json(t) for t in inputs], len(inputs))),
        ("engine: set the input and evaluate the enabled rules", best_per_file(engine_run, len(inputs))),
        ("evaluate_document (engine, lines, summary)", best_per_file(
            lambda: [evaluate_document(f, context) for f in valid], len(valid))),
        ("levels, schedules, exceptions", best_per_file(
            lambda: [document_finding_records(e, context) for e in evaluated], len(evaluated))),
        ("worker's answer (records, marshal)", best_per_file(lambda: marshal.dumps([
            to_worker_record(e, tuple(document_finding_records(e, context)), 1) for e in evaluated
        ]), len(evaluated))),
    ]
    for held in (nodes, documents, evaluated):
        held.clear()  # only the worker chunk's own objects stay alive below
    gc.freeze()  # a worker's heap at fork is frozen too: its per-chunk collection is small
    rows.append(("whole worker chunk (all of the above)", best_per_file(lambda: pool._evaluate_chunk(paths), len(paths))))
    print(f"{len(paths)} files, {len(valid)} valid; microseconds of process time per file, best of 5")
    print("| stage | µs per file |")
    print("|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:,.0f} |")


if __name__ == "__main__":
    main()
