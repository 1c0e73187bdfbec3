"""One block: what crosses the process boundary, and the computation shared with the in-memory API.

A :class:`BlockTask` is everything that crosses the process boundary to a
worker (all picklable, small); a :class:`BlockResult` is what comes back.
:mod:`scatflow.workflow.worker` runs them: it reads exactly the samples the
block's windows need, computes them with :func:`compute_windows` and writes
the block's chunk-aligned region; the driver then records its ledger cells
(data first: a block is never marked done without its data).
:func:`compute_windows` is the same for the workflow and for
:func:`scatflow.transform_stream`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import typing as T

import numpy as np

from ..inputs import windows
from ..inputs.grid import Blocks, Grid
from ..inputs.preprocess import Preprocess
from ..inputs.sources import Station
from ..scattering.network import ScatteringNetwork


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

def shards(todo: T.Sequence[int], shard: int) -> list[list[int]]:
    """Blocks grouped by shard (``b // shard``), ascending: ``[0, 1, 5], 4 -> [[0, 1], [5]]``."""
    out: list[list[int]] = []
    for b in todo:
        if out and out[-1][0] // shard == b // shard:
            out[-1].append(b)
        else:
            out.append([b])
    return out
