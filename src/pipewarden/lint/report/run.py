"""The `report` run as one typed function: fleet -> one evaluation -> report -> history -> text.

The fleet is evaluated once, as `check` would (worker processes for large fleets, the same
incremental cache), and the report aggregates that single result; nothing is evaluated per team
or per org.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from pipewarden.errors import UsageError
from pipewarden.evaluation.context import EvalContext, build_context
from pipewarden.evaluation.fleet_input import load_fleet
from pipewarden.evaluation.result import Result
from pipewarden.evaluation.run import ProgressDisplay, check_files
from pipewarden.lint.formats.registry import render_report, report_formats
from pipewarden.lint.report.aggregate import OrgReport, apply_previous, build_report, to_run_record
from pipewarden.lint.report.history import open_store
from pipewarden.load.discover import Exclude
from pipewarden.load.gitrepo import default_cache_dir
from pipewarden.load.inventory import Fleet
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
    exclude: Exclude | None = None


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


def evaluate_fleet(
    fleet: Fleet, context: EvalContext, options: ReportOptions, progress: ProgressDisplay | None = None
) -> Result:
    """One evaluation of the whole fleet, through `check`'s incremental cache when allowed.

    The cache directory is shared with `check` (and holds the git mirrors under `repos/`), so a
    report right after a check, or a daily report on a fleet that changed little, re-evaluates
    only what changed.
    """
    directory = Path(options.cache_dir or default_cache_dir()) if options.use_cache else None
    return check_files(fleet.paths, context, loaded=fleet.loaded, cache_dir=directory, progress=progress,
                       discovered=fleet.discovered)


def run_report(options: ReportOptions, now: dt.datetime, progress: ProgressDisplay | None = None) -> ReportRun:
    """The report, with `progress` (the CLI's bar) showing the evaluation when given."""
    _check_options(options)
    context = build_context(options.org_config, options.policies, now)
    tree = context.tree
    assert tree is not None
    if options.org is not None and options.org not in tree.nodes:
        raise UsageError(f"--org {options.org!r} is not a node of {options.org_config}; "
                         f"nodes: {', '.join(sorted(tree.nodes))}")
    fleet = load_fleet(options.paths, options.inventory, options.cache_dir, options.exclude)
    result = evaluate_fleet(fleet, context, options, progress)
    # Without an inventory, each file is a repository of its own.
    repos: list[Repo] | None = fleet.repos if options.inventory is not None else None
    report = build_report(result, repos, now, options.org)
    if options.history is not None:
        store = open_store(options.history)
        try:
            previous, last_run = store.latest_rows()
            apply_previous(report, previous, last_run)
            store.record(to_run_record(report))
        finally:
            store.close()
    # The evaluation's notes first, as they have always come (they used to be printed as it ran).
    notes = [*result.notes, *fleet.notes, *report.notes]
    return ReportRun(render_report(options.fmt, report, by=options.by), report, notes)

