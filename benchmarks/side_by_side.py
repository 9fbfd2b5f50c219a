"""Time two source trees of pipewarden side by side: before and after a change.

    python benchmarks/side_by_side.py --before OLD/src --after NEW/src [--rounds 5] [--inner 5]

Each tree runs with the same interpreter and venv, its `src/` first on PYTHONPATH (checked: the
script asks each side where `pipewarden` comes from). A before tree is made with
`git worktree add /tmp/wt-before <commit>`; pass its `src/`.

Per round and per kind of run, the two sides run one after the other (before, after; the next
round after, before, so that neither side always goes first). The long runs are made once per
round, the short ones (single-file check, imports) `--inner` times per round, alternating too:

- check of the 10,000 fleet without cache (JSON to /dev/null, with its org tree, a fixed --now);
- the same check with a warm cache (one cache folder per side, filled before the rounds);
- report of the 10,000 fleet without cache (with the inventory);
- check of one file without cache (the CI case);
- importing the command line: `pipewarden.cli.main`, or `pipewarden.cli.commands` in a tree
  that still has it (the module the earlier tables timed); and `pipewarden --version`, which
  registers every command on both kinds of tree.

Wall time is taken around the process, CPU time is the child's user+sys from os.wait4 (its
workers included, which it waits for). Byte-code is cached (PYTHONDONTWRITEBYTECODE is dropped
for the children and PYTHONPYCACHEPREFIX points at a folder per side under --workdir, so the
trees stay untouched) and written by a warm-up run before the rounds, as it would be on a
user's machine after the first run; `--no-bytecode` measures with no byte-code at all instead.

Before the rounds, each side writes the 10,000 fleet's check JSON (and report JSON) to a file
once; the script compares them byte for byte and says so. Output: a Markdown table with the
medians and ranges per side and the after/before ratios (of the medians; for CPU also the
median and range of the per-round paired ratios), and the load average during the run.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOW = "2026-11-26T10:00:00Z"


def side_env(src: Path, workdir: Path, name: str, bytecode: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(src), RUST_LIB_BACKTRACE="0")
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / f"pycache-{name}")
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    return env


def measure(args: list[str], env: dict[str, str], stdout: str = os.devnull) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user+sys of the child and of the children it waited for)."""
    started = time.perf_counter()
    with open(stdout, "wb") as out:
        child = subprocess.Popen(args, stdout=out, stderr=subprocess.PIPE, env=env)
        assert child.stderr is not None
        errors = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = code = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    if code > 1:  # 1 is check's "enforce findings"
        raise SystemExit(f"{' '.join(args)} failed ({code}): {errors.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime


def ensure_fleet(path: Path, size: int, seed: int) -> None:
    if not (path / "inventory.yaml").exists():
        subprocess.run([sys.executable, str(HERE / "generate_fleet.py"), str(path), str(size), "--seed", str(seed)],
                       check=True)


def tree_label(src: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + (" plus uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "not a git tree"


def fmt_range(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the src/ folder of the before tree")
    parser.add_argument("--after", type=Path, required=True, help="the src/ folder of the after tree")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--inner", type=int, default=5, help="runs of each short measurement per side and round")
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/pipewarden-bench"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-bytecode", action="store_true", help="run without byte-code caching")
    args = parser.parse_args()

    sides = {"before": args.before.resolve(), "after": args.after.resolve()}
    fleet = args.workdir / f"fleet-{args.size}"
    single = args.workdir / "fleet-single"
    ensure_fleet(fleet, args.size, args.seed)
    ensure_fleet(single, 1, args.seed)
    one = str(min((single / "repos").rglob("pipeline.yaml")))
    outdir = args.workdir / "side-by-side"
    outdir.mkdir(parents=True, exist_ok=True)
    py = [sys.executable]
    pw = py + ["-m", "pipewarden"]

    envs: dict[str, dict[str, str]] = {}
    runs: dict[str, dict[str, list[str]]] = {}
    imports: dict[str, str] = {}
    for name, src in sides.items():
        if args.no_bytecode:
            envs[name] = side_env(src, args.workdir, name, bytecode=False)
        else:
            shutil.rmtree(args.workdir / f"pycache-{name}", ignore_errors=True)  # no stale byte-code
            envs[name] = side_env(src, args.workdir, name, bytecode=True)
        where = subprocess.run(py + ["-c", "import pipewarden; print(pipewarden.__file__)"], env=envs[name],
                               capture_output=True, text=True, check=True).stdout.strip()
        if not Path(where).resolve().is_relative_to(src):
            raise SystemExit(f"{name}: pipewarden comes from {where}, not from {src}")
        imports[name] = ("pipewarden.cli.commands" if (src / "pipewarden" / "cli" / "commands.py").exists()
                         else "pipewarden.cli.main")
        cache = args.workdir / f"side-by-side-cache-{name}"
        common = ["--org-config", str(fleet / "org"), "--format", "json", "--now", NOW, "-q"]
        report = pw + ["report", "--org-config", str(fleet / "org"), "--inventory", str(fleet / "inventory.yaml"),
                       "--format", "json", "--now", NOW, "-q"]
        runs[name] = {
            "check (no cache)": pw + ["check", str(fleet / "repos"), *common, "--output", os.devnull, "--no-cache"],
            "check (warm cache)": pw + ["check", str(fleet / "repos"), *common, "--output", os.devnull,
                                        "--cache-dir", str(cache)],
            "report (no cache)": report + ["--output", os.devnull, "--no-cache"],
            "single-file check (no cache)": pw + ["check", one, "--no-cache"],
            "import": py + ["-c", f"import {imports[name]}"],
            "`pipewarden --version`": pw + ["--version"],
        }

    # Identical outputs, and the warm-up: byte-code written, each side's cache filled.
    outputs = {}
    for name in sides:
        check_json = outdir / f"check-{args.size}-{name}.json"
        report_json = outdir / f"report-{args.size}-{name}.json"
        check_cmd = [a if a != os.devnull else str(check_json) for a in runs[name]["check (no cache)"]]
        report_cmd = [a if a != os.devnull else str(report_json) for a in runs[name]["report (no cache)"]]
        measure(check_cmd, envs[name])
        measure(report_cmd, envs[name])
        outputs[name] = (check_json, report_json)
        shutil.rmtree(args.workdir / f"side-by-side-cache-{name}", ignore_errors=True)
        measure(runs[name]["check (warm cache)"], envs[name])  # fills the cache
        for label in ("single-file check (no cache)", "import", "`pipewarden --version`"):
            measure(runs[name][label], envs[name])
    same_check = filecmp.cmp(outputs["before"][0], outputs["after"][0], shallow=False)
    same_report = filecmp.cmp(outputs["before"][1], outputs["after"][1], shallow=False)

    long_runs = ["check (no cache)", "check (warm cache)", "report (no cache)"]
    short_runs = ["single-file check (no cache)", "import", "`pipewarden --version`"]
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    paired: dict[str, list[float]] = {}  # after/before CPU, per adjacent pair
    loads = [os.getloadavg()[0]]
    started = time.time()
    for round_no in range(args.rounds):
        order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
        for label in long_runs + short_runs:
            repeats = 1 if label in long_runs else args.inner
            for rep in range(repeats):
                pair = {}
                for name in (order if rep % 2 == 0 else order[::-1]):
                    pair[name] = measure(runs[name][label], envs[name])
                    samples.setdefault((label, name), []).append(pair[name])
                paired.setdefault(label, []).append(pair["after"][1] / pair["before"][1])
        loads.append(os.getloadavg()[0])
        print(f"round {round_no + 1}/{args.rounds} done, load {loads[-1]:.2f}", file=sys.stderr)
    elapsed = time.time() - started

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"before: {sides['before']} ({tree_label(sides['before'])})")
    print(f"after: {sides['after']} ({tree_label(sides['after'])})")
    print(f"{args.rounds} rounds, {args.inner} runs of each short measurement per side and round; "
          f"byte-code {'not cached' if args.no_bytecode else 'cached (written by a warm-up run)'}; "
          f"{elapsed / 60:.1f} min")
    print(f"1-minute load average at the start and after each round: {', '.join(f'{x:.2f}' for x in loads)}")
    print(f"{args.size:,}-pipeline check JSON: {'byte-identical' if same_check else 'DIFFERENT'} "
          f"({outputs['before'][0].stat().st_size:,} bytes before, {outputs['after'][0].stat().st_size:,} after); "
          f"report JSON: {'byte-identical' if same_report else 'DIFFERENT'}")
    print()
    print("| run | before wall s | after wall s | wall ratio | before CPU s | after CPU s | CPU ratio | "
          "paired CPU ratios |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in long_runs + short_runs:
        shown = f"import {imports['before']} / {imports['after']}" if label == "import" else label
        if label in long_runs:
            shown = shown.replace("check", f"{args.size:,} check", 1).replace("report", f"{args.size:,} report", 1)
        walls = {n: [w for w, _ in samples[(label, n)]] for n in sides}
        cpus = {n: [c for _, c in samples[(label, n)]] for n in sides}
        ratio_wall = statistics.median(walls["after"]) / statistics.median(walls["before"])
        ratio_cpu = statistics.median(cpus["after"]) / statistics.median(cpus["before"])
        pr = paired[label]
        print(f"| {shown} (n={len(walls['before'])}) | {fmt_range(walls['before'])} | {fmt_range(walls['after'])} | "
              f"{ratio_wall:.3f} | {fmt_range(cpus['before'])} | {fmt_range(cpus['after'])} | {ratio_cpu:.3f} | "
              f"{statistics.median(pr):.3f} ({min(pr):.3f}-{max(pr):.3f}) |")


if __name__ == "__main__":
    main()
