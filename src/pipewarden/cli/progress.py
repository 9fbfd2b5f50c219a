"""A progress bar on stderr for long runs; silent when stderr is not a terminal or when quiet."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Runs shorter than this many files finish before a bar would help.
MIN_FILES = 500


@contextmanager
def progress_bar(total: int, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    if quiet or total < MIN_FILES or not sys.stderr.isatty():
        yield None
        return
    done = 0
    started = time.monotonic()
    last = 0.0

    def advance(count: int) -> None:
        nonlocal done, last
        done += count
        now = time.monotonic()
        if now - last < 0.1 and done < total:
            return
        last = now
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / (now - started) if now > started else 0.0
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} pipelines, {rate:,.0f}/s")
        sys.stderr.flush()

    try:
        yield advance
    finally:
        sys.stderr.write("\r" + " " * 79 + "\r")
        sys.stderr.flush()
