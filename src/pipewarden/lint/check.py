"""Typed entry points shared by the CLI commands: build a run's context, check a fleet."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from pipewarden.cli.progress import progress_bar
from pipewarden.evaluation.context import EvalContext, build_context
from pipewarden.evaluation.levels import to_findings
from pipewarden.evaluation.pool import evaluate_paths
from pipewarden.evaluation.result import Result
from pipewarden.load.discover import discover

# Transitional: importers being edited in other changes still take build_context from here.
__all__ = ["build_context", "check_paths"]


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
