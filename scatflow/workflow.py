"""The workflow: a plan made once, then one task per (station, time block).

Data flows one way: source files -> aligned samples -> windows -> kernel ->
labeled dataset -> the block's region of the store. The plan (stations,
grids, blocks, what is already done) is decided up front by the driver from
file names and headers; each task reads exactly the samples its windows need
(including the head of the next day for windows straddling midnight), so
results never depend on how the work was split.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import traceback
import typing as T

import numpy as np
import obspy
from obspy import UTCDateTime

from . import dataset, windows
from .config import Config, ConfigError, samples
from .design import load_network
from .network import ScatteringNetwork
from .sources import FileSource, InputError, SDSSource, Source, Station, make_source, nominal_rate
from .store import STORAGE_ERRNOS, Store, StoreError, now_iso, versions


# -- the network for a station --------------------------------------------------------------
def design_record(cfg: Config) -> dict:
    """What must be identical between runs writing one store (compared key by key)."""
    net = cfg.network
    if net["layers"] is None:
        layers = load_network(net["design"]).design()["layers"]
    else:  # the canonical form, so that quality = 2 and quality = 2.0 are the same design
        layers = [
            {"octaves": int(l["octaves"]), "resolution": int(l["resolution"]), "quality": float(l["quality"]),
             "normalize_wavelet": l.get("normalize_wavelet")}
            for l in net["layers"]
        ]
    return {
        "layers": layers,
        "window_s": net["window_s"],
        "hop_s": cfg.hop_s,
        "reduce": net["reduce"],
        "dtype": cfg.output["dtype"],
        "block_s": cfg.output["block_s"],
        "min_coverage": net["min_coverage"],
    }


@functools.lru_cache(maxsize=16)
def _network(layers_json: str, bins: int, rate: float) -> ScatteringNetwork:
    # Built once per worker process and design: bank construction costs more than a small block.
    return ScatteringNetwork(*json.loads(layers_json), bins=bins, sampling_rate=rate)


def station_network(design: dict, bins: int, rate: float) -> ScatteringNetwork:
    return _network(json.dumps(design["layers"], sort_keys=True), bins, rate)


# -- the plan -------------------------------------------------------------------------------
@dataclasses.dataclass
class StationPlan:
    """What one run does for one station."""

    station: Station
    grid: windows.Grid
    chunk: int  # windows per block (= Zarr chunk along time)
    n_old: int  # windows in the store before the run
    n_new: int  # windows in the store after the run
    span: tuple[int, int]  # window indices k_lo..k_hi (inclusive) of this run's span
    todo: list[int]  # blocks to compute
    complete: int  # blocks of the span already complete

    @property
    def key(self) -> str:
        return self.station.key

    def block_range(self, b: int) -> tuple[int, int]:
        return b * self.chunk, min((b + 1) * self.chunk, self.n_new)

    @property
    def n_blocks(self) -> int:
        return -(-self.n_new // self.chunk)


@dataclasses.dataclass
class Plan:
    cfg: Config
    design: dict
    source: Source
    stations: list[StationPlan]
    skipped: list[tuple[str, str]]

    @property
    def tasks(self) -> int:
        return sum(len(s.todo) for s in self.stations)

    def describe(self) -> str:
        lines = []
        for s in self.stations:
            t0 = np.datetime64(int(s.grid.start_ns(s.span[0])), "ns")
            t1 = np.datetime64(int(s.grid.start_ns(s.span[1])), "ns")
            lines.append(
                f"  {s.key:16s} {len(s.station.channels)} ch @ {s.station.sampling_rate:g} Hz, "
                f"windows {s.span[0]}..{s.span[1]} ({t0} .. {t1}), "
                f"{len(s.todo)} block(s) to compute, {s.complete} already complete"
            )
        for key, why in self.skipped:
            lines.append(f"  {key:16s} skipped: {why}")
        return "\n".join(lines)


def make_source_from_config(cfg: Config) -> Source:
    inp = cfg.input
    if inp["sds"] is not None:
        return SDSSource(inp["sds"], inp["select"])
    return FileSource(inp["paths"], inp["select"])


def make_plan(cfg: Config, store: Store, source: Source | None = None, fresh: bool = False) -> Plan:
    """Decide stations, grids and the blocks to compute; writes nothing.

    Parameters
    ----------
    cfg : Config
    store : Store
    source : Source, optional
        Default: from the config.
    fresh : bool
        Ignore what the store holds (the caller will delete it: ``--overwrite``).
    """
    design = design_record(cfg)
    source = source or make_source_from_config(cfg)
    stations = source.stations()
    fixed = None
    if cfg.network["design"] is not None:
        fixed = load_network(cfg.network["design"])
        window = fixed.bins / fixed.sampling_rate
        if abs(window - cfg.network["window_s"]) > 1e-9:
            raise ConfigError(
                f"network.window_s ({cfg.network['window_s']} s) differs from the design file's "
                f"{fixed.bins} bins at {fixed.sampling_rate} Hz ({window} s)"
            )
    inp = cfg.input
    start = UTCDateTime(inp["start"]).ns if inp["start"] else None
    end = UTCDateTime(inp["end"]).ns if inp["end"] else None
    plans, skipped = [], []
    for st in stations:
        rate = st.sampling_rate
        if rate <= 0:  # state-of-health and log channels: not waveforms
            skipped.append((st.key, f"sampling rate {rate} Hz is not a waveform ({', '.join(st.channels)})"))
            continue
        if fixed is not None and abs(rate - fixed.sampling_rate) > 1e-6 * rate:
            raise InputError(
                f"{st.channels[0]}: sampling rate {rate} Hz does not match the design's {fixed.sampling_rate} Hz"
            )
        check_octaves(design["layers"], cfg.network["window_s"], rate, st.key)
        bins = samples(cfg.network["window_s"], rate, f"{st.key}: network.window_s")
        hop = samples(cfg.hop_s, rate, f"{st.key}: the hop (window_s x (1 - overlap))")
        chunk = int(round(cfg.output["block_s"] / cfg.hop_s))
        state = None if fresh else store.group_state(st.key)
        if state is not None:
            origin = int(state["attrs"]["grid_origin_ns"])
            if state["channels"] != st.channels:
                raise StoreError(
                    f"{st.key}: the store has channels {state['channels']}, the input has {st.channels}"
                )
        else:
            origin = start if start is not None else st.first_ns
        grid = windows.Grid(origin_ns=origin, sampling_rate=rate, bins=bins, hop=hop)
        span_start = start if start is not None else st.first_ns
        span_end = end if end is not None else st.last_ns + int(round(1e9 / rate))
        if span_start < origin:
            raise ConfigError(
                f"input.start ({UTCDateTime(ns=span_start)}) is before the store's grid origin for {st.key} "
                f"({UTCDateTime(ns=origin)}); extend forward in time or use another store"
            )
        k_lo = grid.first_window_ending_after(span_start)
        k_hi = grid.last_window_before(span_end)
        if k_hi < k_lo:
            skipped.append((st.key, "the span is shorter than one window"))
            continue
        n_old = 0 if state is None else state["n_time"]
        n_new = max(n_old, k_hi + 1)
        done = np.zeros(-(-n_new // chunk), dtype=np.int64)
        if state is not None:
            done[: len(state["done"])] = state["done"]
        todo, complete = [], []
        for b in range(k_lo // chunk, k_hi // chunk + 1):
            expected = min((b + 1) * chunk, n_new) - b * chunk
            (complete if done[b] == expected else todo).append(b)
        if complete:
            # Marked done but its chunks deleted by hand: compute it again.
            lost = store.blocks_missing_data(st.key, complete, cfg.network["min_coverage"])
            todo = sorted(todo + lost)
            complete = [b for b in complete if b not in set(lost)]
        complete = len(complete)
        plans.append(StationPlan(st, grid, chunk, n_old, n_new, (k_lo, k_hi), todo, complete))
    return Plan(cfg, design, source, plans, skipped)


def check_octaves(layers: list[dict], window_s: float, rate: float, where: str) -> None:
    """Refuse layers reaching frequencies whose wavelet envelope is wider than the window.

    The lowest centre of a bank is ``nyquist * 2**-octaves`` Hz; its Gaussian
    envelope is ``quality / center`` seconds wide, and a window shorter than
    that cannot resolve it (the wavelet wraps around the window).
    """
    nyquist = rate / 2
    for i, layer in enumerate(layers):
        lowest = nyquist * 2.0 ** -layer["octaves"]
        width = layer["quality"] / lowest
        if width > window_s:
            most = int(np.floor(np.log2(window_s * nyquist / layer["quality"])))
            raise ConfigError(
                f"network.layers[{i}]: octaves = {layer['octaves']} reaches {lowest:.3g} Hz at {where} "
                f"({rate:g} Hz), whose wavelet is {width:.3g} s wide, more than the {window_s:g} s window; "
                f"use at most {most} octaves (or longer windows, or a lower quality)"
            )


def network_for(plan: Plan, sp: StationPlan) -> ScatteringNetwork:
    return station_network(plan.design, sp.grid.bins, sp.grid.sampling_rate)


def prepare_store(plan: Plan, store: Store) -> None:
    """Create or grow each station's group (driver only, before any task)."""
    cfg = plan.cfg
    dtype = np.dtype(cfg.output["dtype"])
    for sp in plan.stations:
        net = network_for(plan, sp)
        attrs = dataset.attributes(
            net, cfg.network["reduce"], sp.grid.window_s, sp.grid.hop_s,
            {
                "grid_origin_ns": int(sp.grid.origin_ns),
                "grid_origin": str(UTCDateTime(ns=sp.grid.origin_ns)),
                "block_windows": sp.chunk,
                "min_coverage": cfg.network["min_coverage"],
                "bins": sp.grid.bins,
                "hop_samples": sp.grid.hop,
            },
        )
        if sp.n_old == 0:
            times = sp.grid.times(0, sp.n_new)
            tmpl = dataset.template(net, times, sp.station.channels, dtype, sp.chunk, attrs)
            store.create_group(sp.key, tmpl, sp.chunk, sp.n_blocks)
        elif sp.n_new > sp.n_old:
            times = sp.grid.times(sp.n_old, sp.n_new)
            tmpl = dataset.template(net, times, sp.station.channels, dtype, sp.chunk, attrs)
            store.extend_group(sp.key, tmpl, -(-sp.n_old // sp.chunk), sp.n_blocks)


# -- one block --------------------------------------------------------------------------------
def coefficients(
    network: ScatteringNetwork,
    x: np.ndarray,
    rec: np.ndarray,
    cov: np.ndarray,
    min_coverage: float,
    reduce: str,
    dtype,
    threads: int | None = 1,
) -> list[np.ndarray]:
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


def run_block(task: dict) -> dict:
    """Compute one (station, block) and write it into the store (runs on a worker).

    Every failure is recorded in the store's ledger with its reason and
    reported back; it never takes the run down.
    """
    t_start = time.perf_counter()
    st: Station = task["station"]
    grid: windows.Grid = task["grid"]
    b, chunk, n_total = task["block"], task["chunk"], task["n_total"]
    k0, k1 = b * chunk, min((b + 1) * chunk, n_total)
    store = Store(task["store"])
    files: list = []
    result = {"station": st.key, "block": b, "windows": k1 - k0, "computed": 0, "error": ""}
    try:
        source = make_source(task["source"])
        t0, t1 = read_span(grid, k0, k1)
        stream, files = source.read(st, t0, t1)
        n = k1 - k0
        nsamp = (n - 1) * grid.hop + grid.bins
        first_ns = grid.sample_ns(k0)
        data, recorded = windows.align(stream, st.channels, first_ns, nsamp, grid.sampling_rate)
        del stream
        if not recorded.any():
            raise InputError(f"{st.key}: no data between {t0} and {t1}")
        cov = windows.coverage(recorded, grid.bins, grid.hop, n)
        min_coverage = task["design"]["min_coverage"]
        if not windows.computable(cov, min_coverage).any():
            # Nothing to compute: fail (and retry on the next run, when the data may have come)
            # rather than mark a block of NaN done.
            raise InputError(
                f"{st.key}: no window has enough data (min_coverage {min_coverage}) between {t0} and {t1}"
            )
        net = station_network(task["design"], grid.bins, grid.sampling_rate)
        dtype = np.dtype(task["design"]["dtype"])
        orders = coefficients(
            net,
            windows.window_view(data, grid.bins, grid.hop, n),
            windows.window_view(recorded, grid.bins, grid.hop, n),
            cov,
            min_coverage,
            task["design"]["reduce"],
            dtype,
            threads=task.get("threads", 1),
        )
        ds = dataset.make_dataset(net, grid.times(k0, k1), st.channels, orders, cov.astype(np.float32), {})
        try:
            store.write_block(st.key, ds, k0, chunk)
            store.mark_block(st.key, b, n, files, "")
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS:
                result["fatal"] = True  # the output cannot take more writes: the driver stops
            raise
        result["computed"] = int((cov > 0).any(axis=1).sum())
        result["coverage"] = float(cov.mean())
        result["worker"] = _worker_identity()
    except (InputError, ConfigError, StoreError, OSError, ValueError) as exc:
        result["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not result.get("fatal"):
            _record_failure(store, st.key, b, files, result["error"])
    except Exception as exc:  # noqa: BLE001 - unexpected: keep the traceback's last line for the record
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
        _record_failure(store, st.key, b, files, result["error"])
    result["seconds"] = time.perf_counter() - t_start
    return result


def _worker_identity() -> str:
    """Where a task ran: host, process and batch job (provenance; proves jobs ran in SLURM)."""
    import os
    import socket

    job = os.environ.get("SLURM_JOB_ID") or os.environ.get("PBS_JOBID") or os.environ.get("JOB_ID")
    return f"{socket.gethostname()}:{os.getpid()}" + (f":job={job}" if job else "")


def read_span(grid: windows.Grid, k0: int, k1: int) -> tuple[UTCDateTime, UTCDateTime]:
    """Time span to read for windows ``k0 .. k1-1``: their samples and half a sample each side
    (ObsPy's nearest-sample rule may pick a sample that far from the grid)."""
    first_ns, end_ns = grid.span_ns(k0, k1)
    half = int(5e8 / grid.sampling_rate)
    return UTCDateTime(ns=first_ns - half), UTCDateTime(ns=end_ns + half)


def _record_failure(store: Store, key: str, block: int, files: list, error: str) -> None:
    try:
        store.mark_block(key, block, 0, files, error)
    except Exception:  # noqa: BLE001 - the driver still reports the failure
        pass


def block_tasks(plan: Plan, threads: int = 1) -> T.Iterator[dict]:
    """The task descriptions of a plan, station by station, in time order."""
    for sp in plan.stations:
        for b in sp.todo:
            t0, t1 = read_span(sp.grid, *sp.block_range(b))
            yield {
                "station": sp.station,
                "grid": sp.grid,
                "block": b,
                "chunk": sp.chunk,
                "n_total": sp.n_new,
                "store": plan.cfg.output["store"],
                "source": plan.source.spec(sp.station, t0, t1),
                "design": plan.design,
                "threads": threads,
            }


# -- the run ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Summary:
    done: list[dict]
    failed: list[dict]
    skipped: list[tuple[str, str]]
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failed

    def text(self) -> str:
        windows_done = sum(r["windows"] for r in self.done)
        lines = [
            f"done: {len(self.done)} block(s), {windows_done} windows in {self.seconds:.1f} s; "
            f"failed: {len(self.failed)}; skipped: {len(self.skipped)}"
        ]
        for key, why in self.skipped:
            lines.append(f"  skipped {key}: {why}")
        for r in self.failed:
            lines.append(f"  failed {r['station']} block {r['block']}: {r['error']}")
        return "\n".join(lines)


def execute(plan: Plan, store: Store, client, progress: T.Callable[[int, int], None] | None = None) -> Summary:
    """Run the plan's tasks on a ``distributed`` client, a bounded number in flight."""
    from distributed import as_completed

    t0 = time.perf_counter()
    tasks = list(block_tasks(plan))
    total = len(tasks)
    slots = max(getattr(client, "scatflow_slots", 0), sum(client.nthreads().values()), 1)
    in_flight = 2 * slots  # enough to keep workers busy, small enough to keep the graph tiny
    pending = iter(tasks)
    results: list[dict] = []

    def submit(task):
        name = f"block-{task['station'].key}-{task['block']}"
        return client.submit(run_block, task, key=f"{name}-{time.monotonic_ns()}", pure=False, retries=0)

    futures = as_completed([submit(t) for t in _take(pending, in_flight)], with_results=False)
    if progress:
        progress(0, total)
    fatal = None
    for fut in futures:
        res = fut.result()
        results.append(res)
        fut.release()
        if res.get("fatal") and fatal is None:
            fatal = res["error"]  # stop feeding tasks; those in flight finish or fail alike
        if fatal is None:
            for t in _take(pending, 1):
                futures.add(submit(t))
        if progress:
            progress(len(results), total)
    if fatal is not None:
        done = sum(1 for r in results if not r["error"])
        raise StoreError(
            f"output store {plan.cfg.output['store']} cannot be written ({fatal}); run stopped: "
            f"{done} block(s) completed this run are kept and marked, {total - done} not done"
        )
    done = [r for r in results if not r["error"]]
    failed = [r for r in results if r["error"]]
    return Summary(done, failed, list(plan.skipped), time.perf_counter() - t0)


def _take(it, n):
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def run(cfg: Config, client, overwrite: bool = False, progress=None, log=print) -> Summary:
    """Plan, prepare the store, run every missing block, record the run.

    Parameters
    ----------
    cfg : Config
    client : distributed.Client
    overwrite : bool
        Delete the store first and recompute everything.
    progress : callable(done, total), optional
    log : callable(str)
    """
    store = Store(cfg.output["store"])
    store.check_writable()
    with store.lock():
        plan = make_plan(cfg, store, fresh=overwrite)
        try:
            if overwrite:
                store.wipe()
            store.open_or_create(plan.design)
            store.drop_consolidated()
            prepare_store(plan, store)
            started = now_iso()
            store.update_root(config=_jsonable(cfg.resolved()), versions=versions())
        except OSError as exc:
            raise StoreError(f"output store {store.path} cannot be written ({exc.strerror or exc})") from None
        log(f"plan: {plan.tasks} block(s) to compute\n{plan.describe()}")
        # A local cluster starts its workers while the driver plans: wait for them only now.
        getattr(client, "scatflow_ready", lambda: None)()
        summary = execute(plan, store, client, progress)
        try:
            _record_run(store, summary, started)
        except OSError as exc:
            raise StoreError(
                f"output store {store.path}: blocks are written but the run record could not be "
                f"({exc.strerror or exc})"
            ) from None
    return summary


def _record_run(store: Store, summary: Summary, started: str) -> None:
    runs = list(store.root_attrs().get("runs", []))
    runs.append(
        {
            "started": started,
            "finished": now_iso(),
            "blocks_done": len(summary.done),
            "blocks_failed": [{"station": r["station"], "block": r["block"], "error": r["error"]} for r in summary.failed],
            "skipped": [{"station": k, "reason": w} for k, w in summary.skipped],
            "workers": sorted({r["worker"] for r in summary.done if r.get("worker")}),
            "seconds": round(summary.seconds, 3),
        }
    )
    store.update_root(runs=runs[-100:])
    store.consolidate()


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


# -- in memory, for notebooks -------------------------------------------------------------------
def transform_stream(
    stream: obspy.Stream,
    network: ScatteringNetwork | None = None,
    *,
    layers: list[dict] | None = None,
    window_s: float = 40.0,
    overlap: float = 0.5,
    reduce: str = "median",
    dtype=np.float64,
    start: UTCDateTime | str | None = None,
    end: UTCDateTime | str | None = None,
    min_coverage: float = 1.0,
    chunk: int = 360,
):
    """Scattering coefficients of one station's stream as a lazy, labeled dataset.

    The windows are a Dask array ``(n_windows, channels, bins)`` chunked along
    windows, cut from one aligned copy of the stream by strided views (one
    copy per chunk); the kernel is mapped over the chunks. ``.compute()`` or
    ``.to_zarr()`` runs it on the current Dask scheduler.

    Parameters
    ----------
    stream : obspy.Stream
        Traces of one station (NET.STA.LOC), one sampling rate.
    network : ScatteringNetwork, optional
        A design; or give ``layers`` (bank keywords per layer) and ``window_s``.
    window_s : float
        Window duration, seconds (ignored when ``network`` is given).
    overlap : float
        Fraction of a window shared with the next, in [0, 1).
    reduce : {"median", "max", "mean"}
    dtype : {np.float64, np.float32}
    start, end : UTCDateTime or str, optional
        Span ``[start, end)``; default: first sample to just after the last one.
    min_coverage : float
        Windows (per channel) with a smaller fraction of recorded samples get NaN.
    chunk : int
        Windows per Dask chunk.

    Returns
    -------
    xarray.Dataset
        SPEC section 3 schema, Dask-backed.
    """
    import dask.array as da

    if not len(stream):
        raise InputError("transform_stream: empty stream")
    keys = {tr.id.rsplit(".", 1)[0] for tr in stream}
    if len(keys) != 1:
        raise InputError(f"transform_stream: expected one station, got {sorted(keys)}")
    channels = sorted({tr.id for tr in stream})
    rates = {tr.id: float(tr.stats.sampling_rate) for tr in stream}
    # As the file and SDS inputs do: 49.9999 Hz reported is 50 Hz nominal.
    rate = nominal_rate(rates[channels[0]])
    if any(abs(r - rate) > windows.RATE_TOLERANCE * rate for r in rates.values()):
        raise InputError(f"transform_stream: channels have different sampling rates {rates}")
    if network is None:
        if layers is None:
            raise ValueError("give a network or layers")
        bins = samples(window_s, rate, "window_s")
        network = ScatteringNetwork(*layers, bins=bins, sampling_rate=rate)
    elif abs(network.sampling_rate - rate) > 1e-6 * rate:
        raise InputError(f"{channels[0]}: sampling rate {rate} Hz does not match the network's {network.sampling_rate} Hz")
    bins = network.bins
    window_s = bins / rate
    hop = samples(window_s * (1 - overlap), rate, "the hop (window_s x (1 - overlap))")
    first = min(tr.stats.starttime for tr in stream).ns
    last = max(tr.stats.endtime for tr in stream).ns + int(round(1e9 / rate))
    origin = UTCDateTime(start).ns if start is not None else first
    stop = UTCDateTime(end).ns if end is not None else last
    grid = windows.Grid(origin, rate, bins, hop)
    n = grid.last_window_before(stop) + 1
    if n < 1:
        raise InputError("transform_stream: the span is shorter than one window")
    nsamp = (n - 1) * hop + bins
    data, recorded = windows.align(stream, channels, origin, nsamp, rate)
    cov = windows.coverage(recorded, bins, hop, n)
    c = len(channels)
    xv = da.from_array(windows.window_view(data, bins, hop, n), chunks=(chunk, c, bins))
    rv = da.from_array(windows.window_view(recorded, bins, hop, n), chunks=(chunk, c, bins))
    cv = da.from_array(cov, chunks=(chunk, c))
    sizes = [int(np.prod(s)) for s in network.shapes]
    dtype = np.dtype(dtype)

    def kernel_chunk(xb, rb, cb):
        out = coefficients(network, xb, rb, cb[..., 0], min_coverage, reduce, dtype, threads=1)
        return np.concatenate([o.reshape(o.shape[0], c, -1) for o in out], axis=-1)

    flat = da.map_blocks(
        kernel_chunk, xv, rv, cv[..., None], dtype=dtype,
        chunks=(xv.chunks[0], (c,), (sum(sizes),)),
    )
    orders, offset = [], 0
    for shape, size in zip(network.shapes, sizes):
        orders.append(flat[..., offset : offset + size].reshape((n, c, *shape)))
        offset += size
    attrs = dataset.attributes(network, reduce, window_s, hop / rate, {"min_coverage": min_coverage})
    return dataset.make_dataset(network, grid.times(0, n), channels, orders, cov.astype(np.float32), attrs)


__all__ = [
    "make_plan", "prepare_store", "execute", "run", "run_block", "coefficients",
    "transform_stream", "design_record", "Plan", "StationPlan", "Summary",
]
