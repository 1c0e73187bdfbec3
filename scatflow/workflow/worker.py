"""What a worker runs: compute blocks and write them into the store.

Two ways to run a task, with the same bits in the store:

* :func:`run_block` computes and writes a task's blocks in one call, shard by
  shard (a backfill: many shards, one task per shard or two);
* :func:`compute_block` computes one block and :func:`write_blocks` writes the
  computed blocks of a shard, one call per shard, as separate Dask tasks: the
  driver uses them when a run has fewer shards than task slots (a station-day
  on two workers), so the blocks of one shard are computed on every worker at
  once, each in its own process, and still written by one task only (zarr
  loses data when two writers fill parts of one shard at once).

Every block's bits depend on its inputs alone, never on which process computed
it, with which blocks, or on how many threads (tests compare stores bitwise).
"""

from __future__ import annotations

import functools
import os
import socket
import time
import traceback

import numpy as np
from obspy import UTCDateTime

from ..errors import ConfigError, InputError, StoreError
from ..inputs import windows
from ..inputs.epochs import Responses
from ..inputs.inventory import load_inventory
from ..inputs.process import process
from ..inputs.sources import make_source
from ..scattering import kernel
from ..store.ledger import consecutive
from ..store.summary import block_summary
from ..store.writer import STORAGE_ERRNOS, Store
from .blocks import BlockResult, BlockTask, compute_windows, shards, station_network


def run_block(task: BlockTask) -> list[BlockResult]:
    """Compute the blocks of one task (whole shards of one station, never a shard another task
    holds) and write them into the store (runs on a worker); one result per block, in order.

    Only data is written here: the driver records each block in the ledger once this returns
    (:meth:`scatflow.store.writer.Store.mark_blocks`), so a block is never marked done without its
    data. A failed block is written as NaN with coverage 0, so it keeps no earlier numbers.
    Every failure is reported back; it never takes the run down. Shards are computed and
    written one at a time, so a worker holds one shard's arrays, whatever the task's length.
    """
    results: list[BlockResult] = []
    groups = shards(task.todo_blocks, task.shard) if task.shard else [list(task.todo_blocks)]
    for group in groups:
        results += write_blocks(task, *(compute_block(task, b) for b in group))
    return results


def compute_block(task: BlockTask, b: int) -> tuple[BlockResult, dict]:
    """Block ``b`` of ``task`` computed (not written): its result and its arrays (name -> values
    along time; NaN and coverage 0 when it failed). A Dask task of its own when the driver splits
    shards over workers; its output goes to the one :func:`write_blocks` task of its shard."""
    t_start = time.perf_counter()
    result, arrays = _one_block(task, b)
    result.seconds = time.perf_counter() - t_start
    if result.ok:  # provenance: where it was computed (its write may still fail it)
        result.worker, result.stack = _worker_identity(), software_stack()
    return result, arrays


def write_blocks(task: BlockTask, *computed: tuple[BlockResult, dict]) -> list[BlockResult]:
    """Write blocks computed by :func:`compute_block` (all of one shard of ``task``'s station,
    ascending) into the store, one write per run of consecutive blocks; their results, with the
    write's failure, if any, as their error (``fatal`` when the output cannot take more writes)."""
    store = Store(task.store)
    by_block = {r.block: (r, arrays) for r, arrays in computed}
    results = [r for r, _ in computed]
    for run in consecutive(sorted(by_block)):
        k0 = task.blocks.range(run[0])[0]
        first = by_block[run[0]][1]
        try:
            store.write_windows(task.station.key, k0, {name: np.concatenate([by_block[b][1][name] for b in run])
                                                       for name in first}, task.token)
        except Exception as exc:  # noqa: BLE001 - any write failure fails the blocks written
            fatal = isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS
            for b in run:
                r = by_block[b][0]
                r.error = r.error or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                r.fatal = fatal  # the output cannot take more writes: the driver stops
                r.worker = r.stack = ""
    return results


def _one_block(task: BlockTask, b: int) -> tuple[BlockResult, dict]:
    """One block's result and the arrays to write for it (NaN and coverage 0 when it failed)."""
    k0, k1 = task.blocks.range(b)
    span = tuple(str(UTCDateTime(ns=t)) for t in task.grid.span_ns(k0, k1))
    result = BlockResult(task.station.key, b, k1 - k0, span)
    try:
        return result, _compute(task, b, result)
    except (InputError, ConfigError, StoreError, OSError, ValueError) as exc:
        result.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    except Exception as exc:  # noqa: BLE001 - unexpected: keep the traceback's last line for the record
        result.error = f"{type(exc).__name__}: {exc}"
        result.traceback = traceback.format_exc()
    net = station_network(task.params, task.grid.bins, task.grid.sampling_rate)
    n, c = k1 - k0, len(task.station.channels)
    out = {f"order_{i + 1}": np.full((n, c, *shape), np.nan, dtype=task.params.dtype)
           for i, shape in enumerate(net.shapes)}
    out["coverage"] = np.zeros((n, c), dtype=np.float32)
    return result, out


def _compute(task: BlockTask, b: int, result: BlockResult) -> dict:
    st, grid, params = task.station, task.grid, task.params
    k0, k1 = task.blocks.range(b)
    t0, t1 = (UTCDateTime(ns=t) for t in grid.block_read_span(task.blocks, b))
    files = result.files  # filled as soon as they are read, so a failure records them too
    stream, read = make_source(task.source).read(st, t0, t1)
    files.extend(read)
    aligned = _samples(stream, task, b, files)
    del stream
    cov = windows.coverage(aligned.recorded, grid.bins, grid.hop, k1 - k0)
    result.notes = {k: v for k, v in (("conflicting", aligned.conflicting), ("nonfinite", aligned.nonfinite),
                                      ("other_rates", sorted(set(aligned.other_rates))),
                                      ("preprocess", aligned.notes)) if v}
    net = station_network(params, grid.bins, grid.sampling_rate)
    computable = windows.computable(cov, params.min_coverage)
    if aligned.other_rates and not computable.any():
        raise InputError(
            f"{st.key}: the sampling rate changes ({sorted(set(aligned.other_rates))[0]}; the station's is "
            f"{grid.sampling_rate:g} Hz): resample every channel with [preprocess] sampling_rate, or use a new store")
    if not computable.any():
        # An outage, not a failure: the coverage is written (0 where nothing was recorded), the block
        # is not marked done, and later runs retry it when the data may have come.
        result.no_data = (f"no data between {t0} and {t1}" if not aligned.recorded.any() else
                          f"no window has enough data (min_coverage {params.min_coverage}) between {t0} and {t1}")
        result.notes["no_data"] = True
        orders = [np.full((k1 - k0, len(st.channels), *shape), np.nan, dtype=params.dtype) for shape in net.shapes]
    else:
        orders = compute_windows(net, params, grid, aligned.data, aligned.recorded, cov, task.threads)
    result.computed = int(computable.any(axis=1).sum())
    cov = cov.astype(np.float32)
    result.summary = block_summary(st.channels, cov, orders[0])
    return {**{f"order_{i + 1}": o for i, o in enumerate(orders)}, "coverage": cov}


def _samples(stream, task: BlockTask, b: int, files: list) -> windows.Aligned:
    """The block's samples on its grid: aligned, or preprocessed over the block's whole span
    and cut to its windows (the response records join ``files``, the block's inputs)."""
    st, grid, pre = task.station, task.grid, task.params.preprocess
    k0, k1 = task.blocks.range(b)
    if not pre.active:
        return windows.align(stream, st.channels, grid.sample_ns(k0), grid.nsamp(k0, k1), grid.sampling_rate)
    inv = load_inventory(pre.inventory) if pre.inventory else None
    responses = _responses(pre, inv) if pre.response != "none" else None
    if responses is not None:
        files.extend(responses.records(st.channels, *grid.block_read_span(task.blocks, b)))
    full = process(stream, st.channels, grid.origin_ns, grid.sample_ns(k0),
                   grid.nsamp(*grid.block_windows(task.blocks, b)), grid.sampling_rate, pre, inv, responses)
    n = grid.nsamp(k0, k1)
    full.data, full.recorded = full.data[:, :n], full.recorded[:, :n]
    return full


_kept_responses: dict = {}


def _responses(pre, inv) -> Responses:
    """The inventory's :class:`Responses` kept per process while the inventory is the same object
    (:func:`load_inventory` keeps it while its files are unchanged): digests are made once."""
    key = (pre.response, id(inv))
    kept = _kept_responses.get(key)
    if kept is None or kept[0] is not inv:
        if len(_kept_responses) >= 4:
            _kept_responses.clear()
        kept = _kept_responses[key] = (inv, Responses(pre, inv))
    return kept[1]


@functools.lru_cache(maxsize=1)
def software_stack() -> str:
    """What a block's bits depend on besides its inputs: scatflow, ObsPy and the kernel's numerics.

    Returns
    -------
    str
        E.g. ``"scatflow 0.3.0, obspy 1.5.1, numpy 2.4.6, scipy 1.17.1, x86-64 AVX2"``.
    """
    import obspy

    from .. import __version__

    return f"scatflow {__version__}, obspy {obspy.__version__}, {kernel.numerics()}"


def _worker_identity() -> str:
    """Where a task ran: host, process and batch job (provenance; proves jobs ran in SLURM)."""
    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID") or os.environ.get("JOB_ID")
    return f"{socket.gethostname()}:{os.getpid()}" + (f":job={job}" if job else "")
