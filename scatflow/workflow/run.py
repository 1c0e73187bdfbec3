"""A run: plan, prepare the store, feed the block tasks to the cluster, record the run.

Data flows one way: config -> :mod:`plan` -> :class:`~scatflow.workflow.blocks.BlockTask`
-> worker (:func:`~scatflow.workflow.worker.run_block`: read, kernel, dataset, store)
-> :class:`~scatflow.workflow.blocks.BlockResult` -> the summary and the run record.
The driver alone creates or grows the station groups and writes attributes,
before any task runs, and holds the store's writer lock throughout.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import typing as T

import numpy as np
from obspy import UTCDateTime

from ..store import dataset
from .blocks import BlockResult, BlockTask
from .worker import compute_block, run_block, write_blocks
from ..config import Config
from ..errors import StoreError
from ..store.summary import run_log
from ..store.lock import now_iso
from .outcome import Summary
from .plan import Design, Plan, make_plan
from ..inputs.inventory import coordinates, load_inventory, units
from ..store.writer import Store, versions

if T.TYPE_CHECKING:
    from .cluster import Cluster


def prepare_store(plan: Plan, store: Store) -> None:
    """Create or grow each station's group (driver only, before any task)."""
    dtype = np.dtype(plan.design.dtype)
    for sp in plan.stations:
        coords, units = _metadata(plan, sp)
        if sp.n_old:
            if sp.added:  # before growing: the new windows are laid out with every channel
                store.add_channels(sp.key, sp.station.channels, coords or None)
            if coords:  # an inventory given to a store created without one
                store.add_channel_coords(sp.key, coords, dataset.COORD_ATTRS)
        # Blocks to compute again are unmarked first (and their stamps changed): see Store.unmark_blocks.
        store.unmark_blocks(sp.key, sp.recomputed)
        if sp.n_new == sp.n_old:
            continue
        net = plan.network(sp)
        attrs = dataset.attributes(
            net, plan.design.reduce, sp.grid.window_s, sp.grid.hop_s,
            {
                "grid_origin_ns": int(sp.grid.origin_ns),
                "grid_origin": str(UTCDateTime(ns=sp.grid.origin_ns)),
                "block_windows": sp.blocks.chunk,
                "shard_blocks": sp.shard,
                "min_coverage": plan.design.min_coverage,
                "bins": sp.grid.bins,
                "hop_samples": sp.grid.hop,
            },
        )
        times = sp.grid.times(sp.n_old, sp.n_new)
        tmpl = dataset.template(net, times, sp.station.channels, dtype, sp.blocks.chunk, attrs, coords, units)
        if sp.n_old == 0:
            store.create_group(sp.key, tmpl, sp.blocks)
        else:
            store.extend_group(sp.key, tmpl, sp.blocks.grown(sp.n_old), sp.blocks)


def _metadata(plan: Plan, sp) -> tuple[dict, str | None]:
    """Channel coordinates and sample units from the inventory ({} and None without one)."""
    pre = plan.design.preprocess
    if plan.inventory is None:
        return {}, (pre.units if pre.active else None)
    t = sp.grid.origin_ns
    rows = [coordinates(plan.inventory, cha, t) for cha in sp.station.channels]
    return ({name: [r[name] for r in rows] for name in ("latitude", "longitude", "elevation", "depth")},
            units(pre, plan.inventory, sp.station.channels, t))


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM (delivered on leaving) where possible: the main thread on POSIX."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


#: Most shards one task computes (each a day of blocks at 6 h blocks).
MAX_SHARDS_PER_TASK = 2
#: The driver records returned blocks in the ledger after this many results, or this many seconds.
#: (``SCATFLOW_LEDGER_FLUSH_S`` sets the seconds: tests that stop a driver mid-run need blocks
#: recorded before a short run ends.)
FLUSH_BLOCKS, FLUSH_S = 512, float(os.environ.get("SCATFLOW_LEDGER_FLUSH_S", 10.0))


class _Ledger:
    """Ledger marks of returned tasks, written in batches by the driver (the only ledger writer)."""

    def __init__(self, store: Store):
        self.store, self.marks, self.count, self.since = store, {}, 0, time.monotonic()

    def add(self, results: list[BlockResult]) -> None:
        for r in results:
            self.marks.setdefault(r.station, []).append(r.mark())
        self.count += len(results)
        if self.count >= FLUSH_BLOCKS or time.monotonic() - self.since > FLUSH_S:
            self.flush()

    def flush(self) -> None:
        for key, marks in sorted(self.marks.items()):
            self.store.mark_blocks(key, marks)
        self.marks, self.count, self.since = {}, 0, time.monotonic()


def execute(plan: Plan, cluster: "Cluster", progress: T.Callable[[int, int], None] | None = None,
            summary: Summary | None = None, log: T.Callable[[str], None] = print, token: str = "") -> Summary:
    """Run the plan's tasks on the cluster, a bounded number in flight, recording each returned
    block in the ledger (in batches) and folding its result into ``summary``.

    Tasks are made as slots free up and results are dropped once counted, so the driver's memory
    holds the tasks in flight, not the run.

    Raises
    ------
    StoreError
        A task found the store unable to take more writes: the run stops feeding
        tasks, lets those in flight finish, and says what is kept.
    """
    from distributed import as_completed

    t0 = time.perf_counter()
    client = cluster.client
    total = plan.tasks
    slots = max(cluster.slots, sum(client.nthreads().values()), 1)
    # Several shards per task when there are many (a backfill): Dask costs the driver a few ms per
    # task, whatever its size; a worker still holds one shard at a time (workflow.worker.run_block).
    per_task = max(1, min(MAX_SHARDS_PER_TASK, plan.shard_count // (4 * slots)))
    # Fewer shards than slots (a station-day on two workers): each block of a shard is a task of its
    # own, computed in every worker process at once (reading and preprocessing too, not only the
    # kernel), and one task per shard writes them; fewer blocks than slots: the idle slots' cores
    # become kernel threads (threads never change the numbers).
    split = plan.shard_count < slots
    threads = max(1, min(slots // max(plan.tasks if split else plan.shard_count, 1), os.cpu_count() or 1))
    pending = plan.block_tasks(threads=threads, token=token, per_task=per_task)
    summary = _summary(plan) if summary is None else summary
    ledger = _Ledger(Store(plan.cfg.output["store"]))

    def submit(task: BlockTask):
        key = f"{task.name}-{time.monotonic_ns()}"
        if not split:
            return client.submit(run_block, task, key=key, pure=False, retries=0)
        # The block futures are dropped here: the scheduler keeps their results until the write has them.
        parts = [client.submit(compute_block, task, b, key=f"{key}-compute-{b}", pure=False, retries=0)
                 for b in task.todo_blocks]
        return client.submit(write_blocks, task, *parts, key=key, pure=False, retries=0)

    # Twice the slots: enough to keep workers busy, small enough to keep the graph tiny.
    inflight = {submit(t) for t in _take(pending, 2 * slots)}
    futures = as_completed(list(inflight), with_results=False)
    if progress:
        progress(0, total)
    fatal, returned = None, 0

    def take(results: list[BlockResult]) -> None:
        nonlocal fatal, returned
        # Ctrl-C or SIGTERM held meanwhile: a block is counted exactly when it is recorded.
        with _signals_held():
            ledger.add(results)
            for res in results:
                summary.add(res)
                if res.fatal and fatal is None:
                    fatal = res.error  # stop feeding tasks; those in flight finish or fail alike
            returned += len(results)

    try:
        for fut in futures:
            results = fut.result()
            inflight.discard(fut)
            fut.release()
            take(results)
            if fatal is None:
                for t in _take(pending, 1):
                    new = submit(t)
                    inflight.add(new)
                    futures.add(new)
            if progress:
                progress(returned, total)
    except KeyboardInterrupt as stop:
        # Blocks already running would finish with their data written but unmarked:
        # let them, for a while, so the count the user reads is what the store holds.
        stop.abandoned = _settle(inflight, take, log)
        raise
    finally:
        try:
            ledger.flush()  # whatever stopped the run: every returned block is recorded
        except OSError as exc:
            # Their data is written but unrecorded: the next run computes them again (never done
            # without data); say so rather than count them as kept.
            raise StoreError(
                f"output store {plan.cfg.output['store']} cannot be written ({exc.strerror or exc}); run stopped: "
                f"the blocks returned since the last ledger record are not marked and will be computed again"
            ) from None
    summary.seconds = time.perf_counter() - t0
    if fatal is not None:
        raise StoreError(
            f"output store {plan.cfg.output['store']} cannot be written ({fatal}); run stopped: "
            f"{summary.done} block(s) completed this run are kept and marked, {total - summary.done} not done"
        )
    return summary


def execute_here(plan: Plan, token: str = "", per_task: int = 1) -> list[BlockResult]:
    """Run every task of ``plan`` in this process, recording the ledger as the driver does (no
    cluster: tests and benchmarks; the store must be prepared, :func:`prepare_store`).

    Returns
    -------
    list of BlockResult
        One per block, in task order.
    """
    ledger, out = _Ledger(Store(plan.cfg.output["store"])), []
    for task in plan.block_tasks(token=token or f"here {time.time_ns()}", per_task=per_task):
        results = run_block(task)
        ledger.add(results)
        out += results
    ledger.flush()
    return out


#: Seconds a stopped run waits for the blocks in flight (a batch system's SIGTERM usually
#: leaves 30 s or more before its SIGKILL); a second Ctrl-C or SIGTERM stops the wait.
STOP_GRACE_S = 20.0


def _settle(inflight: set, take: T.Callable[[list], None], log: T.Callable[[str], None]) -> int:
    """After Ctrl-C or SIGTERM: wait up to :data:`STOP_GRACE_S` seconds for the tasks in flight,
    pass their results to ``take``, cancel the rest and return how many were cancelled."""
    from distributed import wait

    if inflight:
        log(f"stopping: waiting up to {STOP_GRACE_S:g} s for {len(inflight)} block(s) in flight "
            "(Ctrl-C again to stop now)")
        try:
            wait(list(inflight), timeout=STOP_GRACE_S)
        except (KeyboardInterrupt, TimeoutError):
            pass
    left = 0
    for fut in inflight:
        if fut.status == "finished":
            take(fut.result())
        else:
            left += 1  # queued, running, or lost with its worker: not marked done unless it finished
            fut.cancel()
    return left


def _take(it, n: int) -> list:
    out = []
    for item in it:
        out.append(item)
        if len(out) == n:
            break
    return out


def preflight(cfg: Config, overwrite: bool = False) -> Store:
    """The checks made before any cluster starts: the store can be written here and, unless
    ``overwrite``, was written with this configuration's design; the StationXML files, if any,
    can be read (the planner then finds them in the process's cache).

    Raises
    ------
    StoreError
        Naming the path, or each design key that differs.
    InputError
        An inventory glob matching nothing, or an unreadable StationXML file (named).
    """
    store = Store(cfg.output["store"])
    store.check_writable()
    if not overwrite:
        store.check_design(Design.from_config(cfg).record())
    if cfg.preprocess["inventory"]:
        load_inventory(cfg.preprocess["inventory"])
    return store


def run(cfg: Config, cluster: T.Callable[[], "Cluster"], overwrite: bool = False, progress=None, log=print,
        recheck_all: bool = False) -> Summary:
    """Plan, prepare the store, run every missing block, record the run.

    The caller holds the store's writer lock (:func:`scatflow.store.lock.writer_lock`)
    and has made the :func:`preflight` checks, both before starting the cluster. The
    cluster is asked for only once the plan has a task: a run with nothing to compute
    starts (or submits) nothing, and still records itself.

    Parameters
    ----------
    cfg : Config
    cluster : callable
        Returns the started :class:`scatflow.workflow.cluster.Cluster` (the caller closes it),
        e.g. what :func:`scatflow.workflow.cluster.on_demand` yields.
    overwrite : bool
        Delete the store first and recompute everything.
    progress : callable(done, total), optional
    log : callable(str)
    recheck_all : bool
        Compare the content hash of every file each done block read (see :func:`make_plan`).
    """
    store = Store(cfg.output["store"])
    if not overwrite:
        store.recover()  # a channel re-lay a killed driver left: planning must see the group
    plan = make_plan(cfg, store, fresh=overwrite, recheck_all=recheck_all)
    try:
        if overwrite:
            store.wipe()
        store.open_or_create(plan.design.record())
        store.drop_consolidated()
        prepare_store(plan, store)
        started = now_iso()
        store.update_root(config=json.loads(json.dumps(cfg.resolved(), default=str)), versions=versions())
    except OSError as exc:
        raise StoreError(f"output store {store.path} cannot be written ({exc.strerror or exc})") from None
    log(f"plan: {plan.tasks} block(s) to compute\n{plan.describe()}")
    summary = _summary(plan)
    if not plan.tasks:  # nothing to compute: no cluster is started (no job is queued)
        _record(store, summary.record(started))
        return summary
    try:
        handle = cluster()
        # A local cluster starts its workers while the driver plans: wait for them only now.
        handle.wait_ready()
        execute(plan, handle, progress, summary, log, token=f"{started} {time.time_ns()}")
    except KeyboardInterrupt as stop:
        # Ctrl-C or SIGTERM: what is done is kept and marked; record it and leave a store that
        # default opens read (consolidated again), then let the caller say so in one line.
        _record(store, dict(summary.record(started), interrupted=True))
        raise Interrupted(summary.done, getattr(stop, "abandoned", 0)) from None
    _record(store, summary.record(started))
    return summary


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; ``done`` blocks of it are kept, ``abandoned`` were
    still in flight when the driver stopped waiting (each is done only if it marked itself)."""

    def __init__(self, done: int, abandoned: int = 0):
        super().__init__(done)
        self.done, self.abandoned = done, abandoned


def _summary(plan: Plan) -> Summary:
    return Summary(0, [], list(plan.skipped), 0.0, [], list(plan.refused), list(plan.notes))


def _record(store: Store, entry: dict) -> None:
    """Append ``entry`` to the store's run log and consolidate the metadata (driver)."""
    try:
        runs = list(store.root_attrs().get("runs", []))
        store.update_root(runs=run_log(runs + [entry]))
        store.consolidate()
    except OSError as exc:
        raise StoreError(
            f"output store {store.path}: blocks are written but the run record could not be "
            f"({exc.strerror or exc})"
        ) from None


__all__ = ["preflight", "run", "execute", "execute_here", "prepare_store", "Summary"]
