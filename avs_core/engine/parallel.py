"""Sharding map work over processes with output in input order (so files do not depend on it)."""
from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def single_threaded() -> None:
    """The processes are the parallelism; threads would oversubscribe the cores. torch is not
    imported here: a worker whose function does not need it (the CRF) starts without it."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def resolve_workers(workers: int) -> int:
    """``0`` means one process per core."""
    return workers or os.cpu_count() or 1


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of ``workers`` spawned processes for :func:`ordered_map` (None for one worker: the
    work then runs in this process). A stage opens one for all its splits: a spawned worker
    re-imports the stage's entry module, which costs seconds per pool where that module imports
    torch (``stages.crf`` does not: its workers start in well under a second)."""
    workers = resolve_workers(workers)
    if workers == 1:
        yield None
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=single_threaded) as pool:
        yield pool


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                pool: ProcessPoolExecutor | None = None) -> Iterator[R]:
    """``map(fn, items)`` over ``workers`` processes, yielding results in the order of ``items``.

    At most ``2 x workers`` items are in flight, so memory stays bounded however long ``items``
    is (``Pool.imap`` would read all of them ahead). With one worker, ``fn`` runs in this
    process. Workers are spawned, not forked: forking after torch has started its thread pool can
    deadlock. ``fn`` must be a module-level function; each item is computed the same way whatever
    the number of workers, so the merged output is byte-identical. ``pool`` (from
    :func:`worker_pool`) is used when given, else one is opened for this call.
    """
    workers = resolve_workers(workers)
    if workers == 1:
        yield from map(fn, items)
        return
    if pool is None:
        with worker_pool(workers) as own:
            yield from ordered_map(fn, items, workers, own)
        return
    pending: collections.deque = collections.deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= 2 * workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()
