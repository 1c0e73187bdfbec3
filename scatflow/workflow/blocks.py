"""One block: the task a worker runs, and the computation shared with the in-memory API.

A :class:`BlockTask` is everything that crosses the process boundary to a
worker (all picklable, small); a :class:`BlockResult` is what comes back.
:func:`run_block` reads exactly the samples the block's windows need, computes
them with :func:`compute_windows` and writes the block's chunk-aligned region,
then its ledger cells (data first: a block is never marked done without its
data). :func:`compute_windows` is the same for the workflow and for
:func:`scatflow.transform_stream`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import time
import traceback
import typing as T

import numpy as np
from obspy import UTCDateTime

from ..scattering import kernel
from ..inputs import windows
from ..errors import ConfigError, InputError, StoreError
from ..inputs.grid import Blocks, Grid
from ..scattering.network import ScatteringNetwork
from ..inputs.epochs import Responses
from ..inputs.inventory import load_inventory
from ..inputs.preprocess import Preprocess
from ..inputs.process import process
from ..inputs.sources import Station, make_source
from ..store.summary import block_summary
from ..store.ledger import consecutive
from ..store.writer import STORAGE_ERRNOS, Store


@dataclasses.dataclass(frozen=True)
class BlockParams:
    """What a worker needs to compute windows (not the store's identity: see ``plan.Design``).

    Attributes
    ----------
    layers_json : str
        Bank keywords per layer, as canonical JSON (hashable: networks are cached by it).
    reduce : str
        Pooling: median, max or mean.
    dtype : str
        Output precision, float32 or float64.
    min_coverage : float
        Fraction of recorded samples a (window, channel) needs to get coefficients.
    preprocess : Preprocess
        Steps applied to the samples before windowing.
    """

    layers_json: str
    reduce: str
    dtype: str
    min_coverage: float
    preprocess: Preprocess = Preprocess()

    @classmethod
    def make(cls, layers: list[dict], reduce: str, dtype, min_coverage: float,
             preprocess: Preprocess = Preprocess()) -> "BlockParams":
        return cls(json.dumps(layers, sort_keys=True), reduce, np.dtype(dtype).name, float(min_coverage), preprocess)


@functools.lru_cache(maxsize=16)
def _network(layers_json: str, bins: int, rate: float) -> ScatteringNetwork:
    # Built once per worker process and design: bank construction costs more than a small block.
    return ScatteringNetwork(*json.loads(layers_json), bins=bins, sampling_rate=rate)


def station_network(params: BlockParams, bins: int, rate: float) -> ScatteringNetwork:
    """The (cached) network of ``params`` for windows of ``bins`` samples at ``rate`` Hz."""
    return _network(params.layers_json, bins, rate)


@dataclasses.dataclass(frozen=True)
class BlockTask:
    """One (station, block) to compute; sent to a worker.

    Attributes
    ----------
    station : Station
    grid : Grid
    blocks : Blocks
        The station group's blocking (its window count after this run's growth).
    block : int
        The first block the task computes.
    store : str
        The store path.
    source : dict
        :meth:`scatflow.inputs.sources.Source.spec` restricted to this block's span.
    params : BlockParams
    threads : int
        Kernel threads.
    todo : tuple of int
        Every block the task computes, ascending, all in one shard of the store (so a shard is
        only ever written by one task); empty means ``(block,)``.
    token : str
        The run, for the worker's cache of opened arrays (metadata does not change during a run).
    shard : int
        Blocks per shard of the group (0: ``todo`` is one shard); the task computes and writes
        one shard at a time.
    """

    station: Station
    grid: Grid
    blocks: Blocks
    block: int
    store: str
    source: dict
    params: BlockParams
    threads: int = 1
    todo: tuple = ()
    token: str = ""
    shard: int = 0

    @property
    def todo_blocks(self) -> tuple:
        """The blocks this task computes: all within one shard (default: ``block`` alone)."""
        return tuple(self.todo) or (self.block,)

    @property
    def name(self) -> str:
        return f"block-{self.station.key}-{self.block}"


@dataclasses.dataclass
class BlockResult:
    """What a worker reports for one task (the ledger in the store has the same outcome).

    Attributes
    ----------
    station : str
        ``NET.STA.LOC``.
    block : int
    windows : int
        Windows the block holds.
    span : (str, str)
        UTC start of its first window and end of its last (ISO 8601).
    computed : int
        Windows with coefficients on at least one channel.
    error : str
        Why it failed ("" when it did not).
    no_data : str
        Why no window could be computed, when the archive had no usable data
        for the block (an outage, not a failure: retried by later runs).
    fatal : bool
        The store cannot take more writes: the run stops.
    worker : str
        ``host:pid[:job=ID]`` of the worker (provenance).
    stack : str
        The software the worker computed with, as far as the coefficients'
        bits depend on it (:func:`software_stack`).
    seconds : float
    traceback : str
        For unexpected errors only.
    files, notes, summary
        The block's ledger cells (input records, notes, per-channel coverage and NaN counts).
    """

    station: str
    block: int
    windows: int
    span: tuple[str, str] = ("", "")
    computed: int = 0
    error: str = ""
    no_data: str = ""
    fatal: bool = False
    worker: str = ""
    stack: str = ""
    seconds: float = 0.0
    traceback: str = ""
    files: list = dataclasses.field(default_factory=list)
    notes: dict = dataclasses.field(default_factory=dict)
    summary: str = ""

    def mark(self) -> dict:
        """What the driver records in the block's ledger cells (:meth:`Store.mark_blocks`)."""
        # A failed block records its files and reason only: its notes describe data it did not keep.
        return {"block": self.block, "windows": self.windows if self.ok else 0, "files": self.files,
                "error": self.error, "notes": "" if self.error else self.notes,
                "summary": self.summary if self.ok else ""}

    @property
    def ok(self) -> bool:
        """Computed (not failed, not without data)."""
        return not self.error and not self.no_data


def coefficients(network: ScatteringNetwork, x: np.ndarray, rec: np.ndarray, cov: np.ndarray,
                 min_coverage: float, reduce: str, dtype, threads: int | None = 1) -> list[np.ndarray]:
    """Pooled coefficients of windows ``x``, NaN where coverage is below ``min_coverage``.

    Parameters
    ----------
    network : ScatteringNetwork
    x : ndarray, (n, channels, bins)
        Windows (a view is fine: only the windows that get coefficients are copied).
    rec : ndarray of bool, (n, channels, bins)
        Which samples were recorded.
    cov : ndarray, (n, channels)
        Fraction of recorded samples per window and channel.
    min_coverage : float
        Windows (per channel) below it, or with no sample at all, get NaN.
    reduce, dtype, threads
        As :meth:`ScatteringNetwork.transform`.
    """
    n, c = cov.shape
    ok = windows.computable(cov, min_coverage)
    keep = ok.any(axis=1)
    out = [np.full((n, c, *shape), np.nan, dtype=dtype) for shape in network.shapes]
    if keep.any():
        xs = windows.fill_unrecorded(x[keep], rec[keep])
        res = network.transform(xs, reduce_type=reduce, dtype=dtype, threads=threads)
        for full, part in zip(out, res):
            full[keep] = part
            full[~ok] = np.nan
    return out


def compute_windows(network: ScatteringNetwork, params: BlockParams, grid: Grid, data: np.ndarray,
                    recorded: np.ndarray, cov: np.ndarray, threads: int = 1) -> list[np.ndarray]:
    """Coefficients of consecutive windows of aligned samples.

    Parameters
    ----------
    network : ScatteringNetwork
    params : BlockParams
    grid : Grid
        Gives ``bins`` and ``hop`` (samples).
    data, recorded : ndarray, (channels, samples)
        Samples from the first window's first sample (:func:`scatflow.inputs.windows.align`).
    cov : ndarray, (n, channels)
        Coverage of the ``n`` windows (:func:`scatflow.inputs.windows.coverage`).
    threads : int
        Kernel threads.

    Returns
    -------
    list of ndarray
        ``(n, channels, n1)``, ``(n, channels, n1, n2)``... in ``params.dtype``.
    """
    n = cov.shape[0]
    return coefficients(
        network,
        windows.window_view(data, grid.bins, grid.hop, n),
        windows.window_view(recorded, grid.bins, grid.hop, n),
        cov, params.min_coverage, params.reduce, np.dtype(params.dtype), threads=threads,
    )


def run_block(task: BlockTask) -> list[BlockResult]:
    """Compute the blocks of one task (whole shards of one station, never a shard another task
    holds) and write them into the store (runs on a worker); one result per block, in order.

    Only data is written here: the driver records each block in the ledger once this returns
    (:meth:`scatflow.store.writer.Store.mark_blocks`), so a block is never marked done without its
    data. A failed block is written as NaN with coverage 0, so it keeps no earlier numbers.
    Every failure is reported back; it never takes the run down. Shards are computed and
    written one at a time, so a worker holds one shard's arrays, whatever the task's length.
    """
    store = Store(task.store)
    results: list[BlockResult] = []
    groups = shards(task.todo_blocks, task.shard) if task.shard else [list(task.todo_blocks)]
    for run in (run for group in groups for run in consecutive(group)):
        arrays = {}
        for b in run:
            t_start = time.perf_counter()
            result, arrays[b] = _one_block(task, b)
            result.seconds = time.perf_counter() - t_start
            results.append(result)
        k0 = task.blocks.range(run[0])[0]
        try:
            store.write_windows(task.station.key, k0, {name: np.concatenate([arrays[b][name] for b in run])
                                                       for name in arrays[run[0]]}, task.token)
        except Exception as exc:  # noqa: BLE001 - any write failure fails the blocks written
            fatal = isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS
            for r in results[-len(run):]:
                r.error = r.error or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                r.fatal = fatal  # the output cannot take more writes: the driver stops
    identity, stack = _worker_identity(), software_stack()
    for r in results:
        if r.ok:
            r.worker, r.stack = identity, stack
    return results


def shards(todo: T.Sequence[int], shard: int) -> list[list[int]]:
    """Blocks grouped by shard (``b // shard``), ascending: ``[0, 1, 5], 4 -> [[0, 1], [5]]``."""
    out: list[list[int]] = []
    for b in todo:
        if out and out[-1][0] // shard == b // shard:
            out[-1].append(b)
        else:
            out.append([b])
    return out


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
    responses = Responses(pre, inv) if pre.response != "none" else None
    if responses is not None:
        files.extend(responses.records(st.channels, *grid.block_read_span(task.blocks, b)))
    full = process(stream, st.channels, grid.origin_ns, grid.sample_ns(k0),
                   grid.nsamp(*grid.block_windows(task.blocks, b)), grid.sampling_rate, pre, inv, responses)
    n = grid.nsamp(k0, k1)
    full.data, full.recorded = full.data[:, :n], full.recorded[:, :n]
    return full


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
