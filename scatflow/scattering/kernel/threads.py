"""Threads over inner batches of windows (the transforms release the GIL)."""

from __future__ import annotations

import os
import typing as T
from concurrent.futures import ThreadPoolExecutor


def default_threads() -> int:
    """Number of CPUs this process may run on.

    Returns
    -------
    int
        The size of the CPU affinity set on Linux, else ``os.cpu_count()``.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_batches(work: T.Callable[[int, int], None], n: int, batch: int, threads: int) -> None:
    """Call ``work(a, b)`` on consecutive ranges ``a:b`` of ``n`` windows.

    Parameters
    ----------
    work : callable
        Computes windows ``a:b``; writes its results itself.
    n : int
        Number of windows.
    batch : int
        Windows per call.
    threads : int
        Worker threads (at most one per batch); 1 runs in the calling thread.
    """
    batches = [(a, min(a + batch, n)) for a in range(0, n, batch)]
    threads = min(threads, len(batches))
    if threads <= 1:
        for a, b in batches:
            work(a, b)
        return
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in pool.map(lambda ab: work(*ab), batches):
            pass  # consume, so that a worker's exception is raised here
