"""The `report` run as one typed function: fleet -> one evaluation -> report -> history -> text.

The fleet is evaluated once, as `check` would (worker processes for large fleets, the same
incremental cache), and the report aggregates that single result; nothing is evaluated per team
or per org.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from pipewarden.cli.progress import progress_bar
from pipewarden.errors import UsageError
from pipewarden.evaluation.run import EvalContext, Result, evaluate_loaded, evaluate_paths, to_findings
from pipewarden.lint.check import build_context
from pipewarden.lint.formats.registry import render_report, report_formats
from pipewarden.lint.report.aggregate import OrgReport, apply_previous, build_report, to_run_record
from pipewarden.lint.report.history import open_store
from pipewarden.load.discover import discover
from pipewarden.load.gitrepo import default_cache_dir
from pipewarden.load.inventory import Fleet, load_inventory, resolve_inventory
from pipewarden.model.fleet import Repo

BY_LEVELS = ("team", "org")


@dataclass(frozen=True)
class ReportOptions:
    org_config: str
    paths: tuple[str, ...] = ()
    inventory: str | None = None
    fmt: str = "table"
    by: str = "team"
    org: str | None = None
    history: str | None = None
    policies: tuple[str, ...] = ()
    cache_dir: str | None = None
    use_cache: bool = True
    quiet: bool = True


@dataclass
class ReportRun:
    text: str
    report: OrgReport
    notes: list[str] = field(default_factory=list)


def _check_options(options: ReportOptions) -> None:
    if options.fmt not in report_formats():
        raise UsageError(f"--format {options.fmt!r} is not one of: {', '.join(report_formats())}")
    if options.by not in BY_LEVELS:
        raise UsageError(f"--by {options.by!r} is not one of: {', '.join(BY_LEVELS)}")
    if options.inventory is not None and options.paths:
        raise UsageError("give either --inventory FILE or PATHs, not both")


def evaluate_fleet(fleet: Fleet, context: EvalContext, options: ReportOptions) -> Result:
    """One evaluation of the whole fleet, through `check`'s incremental cache when allowed.

    The cache directory is shared with `check` (and holds the git mirrors under `repos/`), so a
    report right after a check, or a daily report on a fleet that changed little, re-evaluates
    only what changed.
    """
    with progress_bar(len(fleet.paths) + len(fleet.loaded), options.quiet) as progress:
        if options.use_cache:
            from pipewarden.evaluation.cache import cached_evaluate

            directory = Path(options.cache_dir) if options.cache_dir else Path(default_cache_dir())
            evaluated = cached_evaluate(fleet.paths, context, directory, progress)
        else:
            evaluated = evaluate_paths(fleet.paths, context, progress)
        evaluated += evaluate_loaded(fleet.loaded, context)
    return to_findings(evaluated, context)


def load_fleet(options: ReportOptions) -> tuple[Fleet, bool]:
    """The fleet from the inventory, or from PATHs like `check` (no PATH: the current directory).

    The flag says whether repositories come from an inventory (else each file is one repository).
    """
    if options.inventory is not None:
        return resolve_inventory(load_inventory(options.inventory), options.cache_dir), True
    paths = list(options.paths) or ["."]
    files = discover(paths)
    fleet = Fleet(paths=files)
    if not files:
        fleet.notes.append(f"no pipeline file found under {', '.join(paths)}")
    return fleet, False


def run_report(options: ReportOptions, now: dt.datetime) -> ReportRun:
    _check_options(options)
    context = build_context(options.org_config, options.policies, now)
    tree = context.tree
    assert tree is not None
    if options.org is not None and options.org not in tree.nodes:
        raise UsageError(f"--org {options.org!r} is not a node of {options.org_config}; "
                         f"nodes: {', '.join(sorted(tree.nodes))}")
    fleet, from_inventory = load_fleet(options)
    result = evaluate_fleet(fleet, context, options)
    repos: list[Repo] | None = fleet.repos if from_inventory else None
    report = build_report(result, repos, now, options.org)
    if options.history is not None:
        store = open_store(options.history)
        try:
            previous, last_run = store.latest_rows()
            apply_previous(report, previous, last_run)
            store.record(to_run_record(report))
        finally:
            store.close()
    return ReportRun(render_report(options.fmt, report, by=options.by), report, fleet.notes + report.notes)

