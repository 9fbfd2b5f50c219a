"""Typed entry points shared by the CLI commands: build a run's context, check a fleet."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path

from pipewarden.cli.progress import progress_bar
from pipewarden.evaluation.run import EvalContext, Result, evaluate_paths, rule_engine, to_findings
from pipewarden.load.discover import discover
from pipewarden.orgs.tree import load_org_tree
from pipewarden.policy.catalog import load_catalog


def build_context(org_config: str | None, policies: Sequence[str], now: dt.datetime) -> EvalContext:
    """Load the catalog (built-in + `policies`) and, when given, the org tree."""
    catalog = load_catalog(tuple(policies))
    if policies:
        # Compile an organisation's own rules now, so that every command (also `rules list` and
        # `config validate`) reports a rule that does not compile, not only those that evaluate.
        rule_engine(catalog)
    today = now.astimezone(dt.UTC).date()
    tree = load_org_tree(org_config, catalog, today) if org_config is not None else None
    return EvalContext(catalog, tree, today)


def check_paths(
    paths: Sequence[str], context: EvalContext, quiet: bool = True, cache_dir: Path | None = None
) -> Result:
    """Discover pipeline files under `paths` (default: the current directory) and check them.

    With `cache_dir`, unchanged files under unchanged settings are not evaluated again.
    A progress bar goes to stderr for long runs on a terminal unless `quiet`.
    """
    files = discover(list(paths) or ["."])
    if not files:
        print(f"pipewarden: no pipeline file found under {', '.join(paths) or '.'}", file=sys.stderr)
    with progress_bar(len(files), quiet) as progress:
        if cache_dir is not None:
            from pipewarden.evaluation.cache import cached_evaluate

            evaluated = cached_evaluate(files, context, cache_dir, progress)
        else:
            evaluated = evaluate_paths(files, context, progress)
    return to_findings(evaluated, context)
