"""Where a single-file check spends its start-up (the CI case), in one process.

    python benchmarks/latency.py [pipeline.yaml]

Prints the wall time of each step the first time it runs: importing the command line, loading
the rule catalog, starting the Rego engine, loading the first file (which compiles the schema
gate) and the first evaluation (which prepares the engine). Run it a few times: the first run
after a change also pays for Python's byte-code compilation.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    pipeline = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "tests" / "data" / "good-pipeline.yaml")
    steps: list[tuple[str, float]] = []
    started = time.perf_counter()

    def step(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        steps.append((name, now - started))
        started = now

    import pipewarden.cli.main  # noqa: F401  (what `pipewarden check` imports first)

    step("import the command line")
    from pipewarden.policy.catalog import load_catalog

    catalog = load_catalog()
    step("load the rule catalog")
    from pipewarden.evaluation.context import EvalContext
    from pipewarden.evaluation.document import evaluate_document
    from pipewarden.evaluation.engines import rule_engine

    rule_engine(catalog)
    step("start the Rego engine")
    from pipewarden.load.pipeline import load_pipeline

    loaded = load_pipeline(pipeline)
    step("load the file (compiles the schema gate)")
    evaluate_document(loaded, EvalContext(catalog, None, dt.date.today()))
    step("evaluate it (prepares the engine)")
    print("| step | ms |")
    print("|---|---:|")
    for name, seconds in steps:
        print(f"| {name} | {seconds * 1000:.0f} |")
    print(f"| total in process | {sum(s for _, s in steps) * 1000:.0f} |")


if __name__ == "__main__":
    main()
