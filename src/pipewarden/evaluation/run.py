"""The one runner: pipeline files + org settings -> findings, for every front.

`check`, `report`, `rules promote` and `--base` call `check_files` (or `evaluate` and then
`to_findings`, when one evaluation is judged under two sets of settings) and get the same
findings; the release engine's policy gate calls `gate.check_document`, built on the same
modules. What lives where:

    context.py   EvalContext (catalog, org tree, today) and build_context
    engines.py   rule_engine(catalog): the Rego engine an evaluation uses
    document.py  one loaded document -> its summary and its rules' violations
    pool.py      files on disk -> evaluated files, in worker processes for large fleets
    cache.py     the incremental cache in front of pool.py
    fleet.py     the fleet rules, over every valid pipeline at once
    levels.py    levels, schedules and exceptions applied: violations -> findings (to_findings)
    result.py    Result, what every output format renders
    bulk.py      gc_paused, for the bulk work of a large run
    fleet_input.py  the fleet a report or a promotion preview reads (inventory or PATHs)
    gate.py      one pipeline document checked, thread-safe (policy gate, decision API)

Nothing here prints: what a person should hear about (a damaged cache, a worker that died)
becomes a note on the result, which the front shows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.document import evaluate_loaded
from pipewarden.evaluation.levels import to_findings
from pipewarden.evaluation.pool import evaluate_paths
from pipewarden.evaluation.result import Result
from pipewarden.model.evaluated import Evaluated
from pipewarden.model.pipeline import PipelineFile

# How a front shows a run's progress: called with the number of files the run will evaluate, it
# gives a context around that work whose value (None: nothing shown) is called with each number
# of files done. The CLI passes its progress bar; nothing here draws anything.
ProgressDisplay = Callable[[int], AbstractContextManager[Callable[[int], None] | None]]


def evaluate(
    paths: Sequence[str],
    context: EvalContext,
    *,
    loaded: Iterable[PipelineFile] = (),
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    notes: list[str] | None = None,
    discovered: Collection[str] = (),
) -> list[Evaluated]:
    """Every file of a run evaluated, levels not yet applied: the files at `paths` (through the
    incremental cache in `cache_dir` when given; in worker processes for large fleets), then the
    files already `loaded` (from git). `progress` is called with the number of files done from
    `paths`; `notes` receives the run's notes.

    Files in `discovered` (found by walking a directory, not named) that belong to another tool
    are left out, and counted in a note (cli.md). Whether a file is another tool's is known from
    the parse its evaluation makes anyway (and is kept in the cache with its result)."""
    if cache_dir is not None:
        # Imported here: a run without the cache (a single-file `--no-cache` check) skips it.
        from pipewarden.evaluation.cache import cached_evaluate

        evaluated = cached_evaluate(list(paths), context, cache_dir, progress, notes=notes)
    else:
        evaluated = evaluate_paths(paths, context, progress, notes=notes)
    evaluated += evaluate_loaded(loaded, context)
    if discovered:
        skipped = [e.summary.file for e in evaluated if e.foreign and e.summary.file in discovered]
        if skipped:
            gone = set(skipped)
            evaluated = [e for e in evaluated if e.summary.file not in gone]
            if notes is not None:
                notes.append(foreign_note(skipped))
    return evaluated


def foreign_note(files: Sequence[str]) -> str:
    """The one-line note on the discovered files that belong to other tools."""
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"note: skipped {len(files)} file(s) of other tools (no 'apiVersion: pipewarden/...' or 'kind'): "
            f"{shown}; --exclude (or a project config's exclude) skips them without this note")


def check_files(
    paths: Sequence[str],
    context: EvalContext,
    *,
    loaded: Sequence[PipelineFile] = (),
    cache_dir: Path | None = None,
    progress: ProgressDisplay | None = None,
    notes: Sequence[str] = (),
    discovered: Collection[str] = (),
) -> Result:
    """The whole run: `evaluate` (shown by `progress` when given), then levels, schedules,
    exceptions and the fleet rules. `notes` are notes from before the run (finding the files),
    kept first on the result; `discovered` as in `evaluate`."""
    run_notes = list(notes)
    with (progress or _no_progress)(len(paths) + len(loaded)) as advance:
        evaluated = evaluate(paths, context, loaded=loaded, cache_dir=cache_dir, progress=advance, notes=run_notes,
                             discovered=discovered)
    return to_findings(evaluated, context, run_notes)


def _no_progress(total: int) -> AbstractContextManager[None]:
    return nullcontext()
