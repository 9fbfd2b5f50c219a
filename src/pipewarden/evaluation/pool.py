"""Files on disk -> evaluated files, in worker processes when the fleet is large.

The embedded engine holds the GIL, so a large fleet is evaluated by forked worker processes,
each with an engine of its own. A worker also applies levels to the files it evaluated (less
serial work for the parent) and answers with marshalled records, not pickled objects. Should a
worker die (a crash in native code on some input), the files it had not answered for are
evaluated again in this process with the iterative YAML parser, and the run says so in a note.
"""

from __future__ import annotations

import gc
import marshal
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pipewarden.evaluation.bulk import gc_paused
from pipewarden.evaluation.context import EvalContext
from pipewarden.evaluation.document import evaluate_document
from pipewarden.evaluation.levels import document_finding_records
from pipewarden.load.pipeline import load_pipeline
from pipewarden.load.yamlsafe import iterative_parsing
from pipewarden.model.evaluated import Evaluated, from_worker_record, to_worker_record

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 400
CHUNK = 200
WORKER_DIED = (
    "warning: a worker process died; {count} file(s) are checked again in the main process with the "
    "iterative YAML parser (please report this, with the files if you can)"
)

# What the workers evaluate with, set before the fork and inherited by it.
_context: EvalContext | None = None
# Called with each batch of fresh results where they were computed (in the worker, for a
# pool): the cache writes them there, in parallel, instead of in the parent afterwards.
_after_batch: Callable[[list[Evaluated]], None] | None = None


def _evaluate_path(path: str) -> Evaluated:
    assert _context is not None
    return evaluate_document(load_pipeline(path), _context)


def _evaluate_chunk(paths: list[str]) -> bytes:
    """A worker's share: evaluate, and apply levels too, so the parent has less serial work.

    The answer is marshalled records (see model.evaluated), not pickled objects.
    """
    assert _context is not None
    gc.disable()  # see gc_paused; a worker collects once per chunk instead
    gc.collect()
    items = [_evaluate_path(path) for path in paths]
    if _after_batch is not None:
        _after_batch(items)
    context = _context
    return marshal.dumps([
        to_worker_record(item, tuple(document_finding_records(item, context)), id(context)) for item in items
    ])


def _workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _chunks(paths: Sequence[str], workers: int) -> list[list[str]]:
    """Chunks of CHUNK files, then quarter-size ones for the last few rounds, so that at the
    end no worker waits long for another to finish a full chunk."""
    chunks = []
    start = 0
    while start < len(paths):
        size = CHUNK if len(paths) - start > 2 * workers * CHUNK else max(CHUNK // 4, 1)
        chunks.append(list(paths[start : start + size]))
        start += size
    return chunks


def evaluate_paths(
    paths: Sequence[str],
    context: EvalContext,
    progress: Callable[[int], None] | None = None,
    after_batch: Callable[[list[Evaluated]], None] | None = None,
    notes: list[str] | None = None,
) -> list[Evaluated]:
    """Load and evaluate files, in worker processes when the fleet is large.

    `after_batch`, when given, receives every result once, in batches, in the process that
    computed them (a worker, after fork: it must not use the caller's open connections).
    `notes`, when given, receives the run's notes (a worker that died).
    """
    global _context, _after_batch
    _context = context
    _after_batch = after_batch
    if len(paths) < PARALLEL_THRESHOLD or _workers() == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return _evaluate_here(paths, progress, after_batch)
    results: list[Evaluated] = []
    # Frozen objects are never scanned by a collection: a worker's per-chunk gc.collect() then
    # costs what that chunk allocated, not the whole heap inherited from this process.
    gc.freeze()
    try:
        with gc_paused():
            _evaluate_in_pool(paths, results, progress)
    except BrokenProcessPool:
        # A worker died (a crash in native code on some input): the files without an answer are
        # checked again here, with the iterative parser, so the run finishes and says so.
        remaining = paths[len(results) :]
        if notes is not None:
            notes.append(WORKER_DIED.format(count=len(remaining)))
        with iterative_parsing(), gc_paused():
            results.extend(_evaluate_here(remaining, progress, after_batch))
    finally:
        gc.unfreeze()
    return results


def _evaluate_here(
    paths: Sequence[str], progress: Callable[[int], None] | None, after_batch: Callable[[list[Evaluated]], None] | None
) -> list[Evaluated]:
    """Evaluate in this process, one file after the other."""
    results = []
    for path in paths:
        results.append(_evaluate_path(path))
        if progress:
            progress(1)
    if after_batch is not None and results:
        after_batch(results)
    return results


def _evaluate_in_pool(paths: Sequence[str], results: list[Evaluated], progress: Callable[[int], None] | None) -> None:
    """Fill `results` in path order. A pool of the standard library's executor, because it
    raises BrokenProcessPool when a worker dies where multiprocessing.Pool would wait forever."""
    fork = multiprocessing.get_context("fork")
    # A worker builds engines of its own (rule_engine), never one inherited through fork: an
    # engine is bound to the thread that made it.
    with ProcessPoolExecutor(_workers(), mp_context=fork) as pool:
        for answer in pool.map(_evaluate_chunk, _chunks(paths, _workers())):
            batch = marshal.loads(answer)
            results.extend(from_worker_record(record) for record in batch)
            if progress:
                progress(len(batch))
