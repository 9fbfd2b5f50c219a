"""Time `pipewarden check` and `pipewarden report` on generated fleets.

    python benchmarks/run.py [--sizes 1000 10000 50000] [--workdir /tmp/pipewarden-bench] [--seed 7] [--repeat 3]

For each size: generates the fleet once (deterministic by seed), then runs each command as a
separate process with `/usr/bin/time`-style measurement (wall time via perf_counter, peak RSS
of the child via resource.getrusage), and prints pipelines/second. Also measures a single-file
check (CI latency), a cold and a warm (cached) run, and the import time of the package.
With --repeat N, each measurement runs N times, interleaved with the others (so that a slow
moment of a shared machine does not land on one kind of run), and the table gives the median
and the range.
Results go to stdout as a Markdown table; copy them into benchmarks/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIPEWARDEN = [sys.executable, "-m", "pipewarden"]


def measure(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB of the process and of its largest worker, exit code).

    os.wait4 gives the rusage of that one child; ru_maxrss of a parent covers the largest of
    the children it waited for (its workers), which is what peak memory means here.
    """
    started = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        child = subprocess.Popen(args, stdout=devnull, stderr=subprocess.PIPE, env=env, text=True)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    child.returncode = code
    if code > 1:
        raise SystemExit(f"{' '.join(args)} failed: {errors}")
    return wall, usage.ru_maxrss / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pipewarden-bench"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of each measurement per size; the table shows the median and the range")
    args = parser.parse_args()
    env = dict(os.environ, RUST_LIB_BACKTRACE="0")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    rows = []
    for size in args.sizes:
        fleet = args.workdir / f"fleet-{size}"
        if not (fleet / "inventory.yaml").exists():
            subprocess.run([sys.executable, str(HERE / "generate_fleet.py"), str(fleet), str(size), "--seed", str(args.seed)], check=True)
        cache = args.workdir / f"cache-{size}"
        common = ["--org-config", str(fleet / "org"), "--format", "json", "--output", os.devnull, "--now", "2026-11-26T10:00:00Z"]
        report = PIPEWARDEN + ["report", "--org-config", str(fleet / "org"), "--inventory", str(fleet / "inventory.yaml"),
                               "--format", "json", "--output", os.devnull, "--now", "2026-11-26T10:00:00Z", "-q"]
        runs = [
            ("check (no cache)", PIPEWARDEN + ["check", str(fleet / "repos"), *common, "--no-cache"]),
            ("check (cold cache)", PIPEWARDEN + ["check", str(fleet / "repos"), *common, "--cache-dir", str(cache)]),
            ("check (warm cache)", PIPEWARDEN + ["check", str(fleet / "repos"), *common, "--cache-dir", str(cache)]),
            ("report (no cache)", report + ["--no-cache"]),
            ("report (warm cache)", report + ["--cache-dir", str(cache)]),
        ]
        measured: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in runs}
        for _ in range(args.repeat):
            # Interleaved repetitions: a slow moment of the machine spreads over every kind of run.
            subprocess.run(["rm", "-rf", str(cache)], check=True)
            for label, command in runs:
                wall, rss, _ = measure(command, env)
                measured[label].append((wall, rss))
        for label, _ in runs:
            walls = sorted(w for w, _ in measured[label])
            median = walls[len(walls) // 2]
            rows.append((label, size, median, size / median, max(r for _, r in measured[label]), walls[0], walls[-1]))
    single = args.workdir / "fleet-single"
    if not single.exists():
        subprocess.run([sys.executable, str(HERE / "generate_fleet.py"), str(single), "1", "--seed", str(args.seed)], check=True)
    one = next((single / "repos").rglob("pipeline.yaml"))
    walls = sorted(measure(PIPEWARDEN + ["check", str(one), "--no-cache"], env)[0] for _ in range(5))
    rows.append(("single-file check (median of 5)", 1, walls[2], 1 / walls[2], 0.0, walls[0], walls[-1]))
    imports = sorted(measure([sys.executable, "-c", "import pipewarden.cli.main"], env)[0] for _ in range(5))
    rows.append(("import pipewarden.cli.main (median of 5)", 0, imports[2], 0.0, 0.0, imports[0], imports[-1]))
    print("| run | pipelines | wall s (median) | range s | pipelines/s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, size, wall, rate, rss, low, high in rows:
        print(f"| {label} | {size:,} | {wall:.2f} | {low:.2f}-{high:.2f} | {rate:,.0f} | {rss:,.0f} |")


if __name__ == "__main__":
    main()
