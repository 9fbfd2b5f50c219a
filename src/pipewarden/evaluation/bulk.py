"""Bulk work without the cyclic garbage collector: `gc_paused`."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during bulk work.

    Evaluating a fleet allocates millions of small, acyclic objects; each full collection
    scans the whole (growing) heap, which made a 20,000-pipeline run ~40% slower. Reference
    counting still frees everything; the collector runs once at the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
