"""What a nightly run costs as the store grows: CPU, memory, store requests and files.

Run by hand (not a test)::

    python benchmarks/nightly.py [--sizes 4x4,4x16,16x16,16x32] [--channels 1] [--nights 3]
                                 [--night-budget 60] [--workers 2] [--workdir /tmp/scatflow-nightly]

For each size S x D (stations x days) it writes an SDS archive with ObsPy (S
stations, 1-3 channels at 1 Hz, one day file per channel and day) and builds
the complete store with ``scatflow run``'s driver on a local cluster. The
network is tiny (40 s windows, 20 s hop, one-octave layers at 1 Hz), so the
files, blocks (6 h, the default ``output.block_s``) and ledger entries are
those of a real store while the kernel costs almost nothing. The store is
then analysed once (the model is fitted). Then, for each of ``--nights``
nights (the medians over nights are reported; a size whose first night took
more than ``--night-budget`` seconds gets that one night only):

* ``plan no-op``, ``info``, ``analyze no-op``, ``run no-op``: nothing new;
* one more day file for every channel, the config's end one day later, then
  ``plan +1 day``, ``run +1 day``, ``worker block`` (one block task of that
  night computed again in this process: the worker side, which the driver's
  counts do not see) and ``analyze +1 day``.

Each operation is measured in this process: CPU (``time.process_time``, all
threads of the driver, Dask client included), wall time, resident memory
growth, and the results-store requests by kind (every Zarr open of a store
goes through ``scatflow.store.access.zarr_store``; a counting wrapper is
installed there). ``run`` is the command's driver: preflight and ``run()``
(planning included), on a cluster started once per size (its start is not
counted). ``analyze`` runs without a cluster (Dask's synchronous scheduler),
so its labelling is counted here too (the command sends it to workers).

Then each measure is fitted over the sizes as ``a + b x blocks + c x stations``
(non-negative least squares; ``blocks`` = the store's blocks when measured)
and extrapolated to 1000 stations x 10 years (14.6 M blocks at 6 h); the
last lines are a markdown table to paste.

Two functions adapt it to another version of scatflow: :func:`worker_block`
(one block task computed in this process) and :func:`driver_run` (what
``scatflow run`` does after parsing its arguments).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _growth import fit, human, law, predict  # noqa: E402
from _requests import KINDS, counting, since, snapshot, tree_size  # noqa: E402
from _util import environment, median, peak_mb, reset_peak, rss_mb  # noqa: E402

START = "2015-01-01"
RATE = 1.0
BLOCKS_PER_DAY = 4  # 6 h blocks (output.block_s default)
TARGET_STATIONS, TARGET_YEARS = 1000, 10
TARGET_BLOCKS = TARGET_STATIONS * TARGET_YEARS * 365.25 * BLOCKS_PER_DAY


# -- the two places that know scatflow's internals ------------------------------------------------
def worker_block(plan) -> int:
    """Compute one task of ``plan`` in this process, as a worker does, and record its blocks in the
    ledger as the driver does (store format 2: one batch); the blocks computed.

    ``scatflow.workflow.worker.run_block(task)`` writes the data of a task's blocks (one shard);
    ``Store.mark_blocks`` is the driver's ledger write for them.
    """
    from scatflow.store.writer import Store
    from scatflow.workflow.worker import run_block

    task = next(iter(plan.block_tasks(token="bench")), None)
    if task is None:
        return 0
    results = run_block(task)
    failed = [r.error for r in results if r.error]
    if failed:
        raise RuntimeError(f"block {task.name}: {failed[0]}")
    Store(task.store).mark_blocks(task.station.key, [r.mark() for r in results])
    return len(results)


def driver_run(cfg, handle) -> int:
    """``scatflow run CONFIG`` after its argument parsing: preflight, writer lock, ``run()``; the
    blocks computed."""
    from scatflow.store.lock import writer_lock
    from scatflow.workflow.run import preflight, run

    store = preflight(cfg)
    with writer_lock(store.path):
        summary = run(cfg, lambda: handle, log=lambda line: None)
    if not summary.ok:
        raise RuntimeError(summary.text())
    return summary.done


# -- archive and configs ---------------------------------------------------------------------------
def day_name(seed_id: str, day) -> Path:
    net, sta, loc, cha = seed_id.split(".")
    return Path(f"{day.year}", net, sta, f"{cha}.D", f"{seed_id}.D.{day.year}.{day.julday:03d}")


def seed_ids(stations: int, channels: int) -> list[str]:
    return [f"XX.S{s:03d}..LH{c}" for s in range(stations) for c in "ZNE"[:channels]]


def write_pool(pool: Path, stations: int, days: int, channels: int) -> int:
    """Day files of noise at 1 Hz for every channel and day (the sizes link theirs from here)."""
    import obspy

    start = obspy.UTCDateTime(START)
    count = 0
    for i, seed_id in enumerate(seed_ids(stations, channels)):
        net, sta, loc, cha = seed_id.split(".")
        rng = np.random.default_rng(i)
        for d in range(days):
            day = start + d * 86400
            path = pool / day_name(seed_id, day)
            if path.exists():
                continue
            data = rng.normal(0, 500, int(86400 * RATE)).round().astype(np.int32)
            tr = obspy.Trace(data, {"network": net, "station": sta, "location": loc, "channel": cha,
                                    "sampling_rate": RATE, "starttime": day})
            path.parent.mkdir(parents=True, exist_ok=True)
            tr.write(str(path), format="MSEED", encoding="STEIM2", reclen=4096)
            count += 1
    return count


def link_days(pool: Path, sds: Path, stations: int, channels: int, first: int, last: int) -> None:
    """Hard-link days ``first..last-1`` of the first ``stations`` stations from the pool into ``sds``."""
    import obspy

    start = obspy.UTCDateTime(START)
    for seed_id in seed_ids(stations, channels):
        for d in range(first, last):
            rel = day_name(seed_id, start + d * 86400)
            (sds / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(pool / rel, sds / rel)


def config(work: Path, days: int, workers: int):
    """The run and analysis config of a store covering ``days`` days from START."""
    import obspy

    from scatflow.config import load_config

    end = obspy.UTCDateTime(START) + days * 86400
    path = work / f"config-{days}.toml"
    path.write_text(f"""[input]
sds = "sds"
start = "{START}T00:00:00"
end = "{str(end)[:19]}"

[network]
window_s = 40.0
overlap = 0.5
layers = [{{ octaves = 1, resolution = 2, quality = 1 }}, {{ octaves = 1, resolution = 2, quality = 1 }}]

[output]
store = "results.zarr"

[cluster]
kind = "local"
workers = {workers}
dashboard = false

[analysis]
sample = 2000
components = 2
clusters = 3
""")
    return load_config(path)


# -- measuring -------------------------------------------------------------------------------------
def measure(fn) -> tuple[object, dict]:
    """Run ``fn()``; its result and a record: cpu, wall (s), rss, peak (MB growth), requests by kind."""
    gc.collect()
    before, rss0 = snapshot(), rss_mb()
    reset_peak()
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    rec = {"cpu": time.process_time() - c0, "wall": time.perf_counter() - t0,
           "rss": rss_mb() - rss0, "peak": peak_mb() - rss0}
    rec.update(since(before))
    return out, rec


def analyze_in_process(cfg):
    import dask

    from scatflow.analysis.analyze import analyze

    # The command sends the labelling to its cluster's workers; here it stays in this process,
    # so its requests are counted.
    with dask.config.set(scheduler="sync"):
        return analyze(cfg, log=lambda line: None)


def complete_blocks(store: Path) -> int:
    """Blocks marked done in the ledgers of the store's station groups."""
    import zarr

    root = zarr.open_group(str(store), mode="r", use_consolidated=False)
    total = 0
    for name, group in root.groups():
        if name != "analysis" and "block_done" in group:
            total += int((group["block_done"][:] > 0).sum())
    return total


def measure_size(work: Path, pool: Path, stations: int, days: int, args, log) -> dict:
    """Every measure of one size: ``{measure: [record per night]}`` plus ``build`` and ``files``."""
    from scatflow.report import store_report
    from scatflow.store.writer import Store
    from scatflow.workflow.cluster import connect
    from scatflow.workflow.plan import make_plan

    shutil.rmtree(work, ignore_errors=True)
    (work / "sds").mkdir(parents=True)
    link_days(pool, work / "sds", stations, args.channels, 0, days)
    out: dict[str, list] = {}

    def keep(name, rec, blocks):
        out.setdefault(name, []).append(dict(rec, blocks=blocks))

    cfg = config(work, days, args.workers)
    with connect(cfg.cluster, log=lambda line: None) as handle:
        computed, rec = measure(lambda: driver_run(cfg, handle))
        keep("build", dict(rec, computed=computed), 0)
        log(f"  built {computed} blocks in {rec['wall']:.1f} s")
        _, rec = measure(lambda: analyze_in_process(cfg))
        keep("analyze fit", rec, computed)
        store = cfg.output["store"]
        files, dirs = tree_size(store)
        complete = complete_blocks(store)
        out["files"] = [{"files": files, "dirs": dirs, "blocks": complete, "station_days": stations * days}]
        for night in range(args.nights):
            if night == 1 and time.perf_counter() - night_t0 > args.night_budget:
                log(f"  one night only: it took {time.perf_counter() - night_t0:.0f} s (--night-budget)")
                break
            night_t0 = time.perf_counter()
            end = days + night
            blocks = stations * end * BLOCKS_PER_DAY
            cfg = config(work, end, args.workers)
            _, rec = measure(lambda: make_plan(cfg, Store(store)))
            keep("plan no-op", rec, blocks)
            _, rec = measure(lambda: store_report(store))
            keep("info", rec, blocks)
            _, rec = measure(lambda: analyze_in_process(cfg))
            keep("analyze no-op", rec, blocks)
            computed, rec = measure(lambda: driver_run(cfg, handle))
            if computed:
                raise RuntimeError(f"a no-op run computed {computed} block(s)")
            keep("run no-op", rec, blocks)
            link_days(pool, work / "sds", stations, args.channels, end, end + 1)
            cfg = config(work, end + 1, args.workers)
            plan, rec = measure(lambda: make_plan(cfg, Store(store)))
            keep("plan +1 day", rec, blocks)
            computed, rec = measure(lambda: driver_run(cfg, handle))
            keep("run +1 day", dict(rec, computed=computed), blocks)
            # The same block again, in this process: what one worker task costs at this store size.
            n, rec = measure(lambda: worker_block(plan))
            keep("worker block", rec, blocks)
            _, rec = measure(lambda: analyze_in_process(cfg))
            keep("analyze +1 day", rec, blocks)
            log(f"  night {night + 1}: +1 day run {computed} blocks, cpu {out['run +1 day'][-1]['cpu']:.2f} s, "
                f"{out['run +1 day'][-1]['total']} requests")
    return out


# -- report ----------------------------------------------------------------------------------------
MEASURES = ["plan no-op", "plan +1 day", "run no-op", "run +1 day", "info", "analyze no-op", "analyze +1 day",
            "worker block"]


def med(records: list[dict], key: str) -> float:
    return float(median([r[key] for r in records]))


def report(sizes, results, args) -> None:
    xs_b = {m: [med(results[s][m], "blocks") for s in sizes] for m in MEASURES}
    xs_s = [s[0] for s in sizes]
    rows = []

    print("\n## Medians per size (S x D: stations x days; blocks = the store's blocks when measured)\n")
    head = "| measure | " + " | ".join(f"{s}x{d}" for s, d in sizes) + " |"
    print(head)
    print("|" + "---|" * (len(sizes) + 1))
    for m in MEASURES:
        cells = []
        for size in sizes:
            r = results[size][m]
            req = "/".join(str(int(med(r, k))) for k in KINDS)
            cells.append(f"{med(r, 'cpu'):.3f} s cpu, {med(r, 'wall'):.2f} s wall, {med(r, 'rss'):+.1f}/{med(r, 'peak'):+.1f} MB, "
                         f"{int(med(r, 'total'))} req ({req})")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"\n(requests by kind: {'/'.join(KINDS)}; MB: the driver's resident memory growth / peak growth)")

    print("\n## Store shape and the full build per computed block\n")
    for size in sizes:
        f = results[size]["files"][0]
        b = results[size]["build"][0]
        print(f"{size[0]}x{size[1]}: {f['blocks']} complete blocks, {f['files']} files, {f['dirs']} dirs "
              f"({f['files'] / f['blocks']:.2f} files, {f['dirs'] / f['blocks']:.3f} dirs per block; "
              f"{f['files'] / f['station_days']:.1f} files per station-day); build: {b['computed']} blocks, "
              f"driver {b['cpu'] / b['computed'] * 1e3:.2f} ms cpu and {b['rss'] / b['computed'] * 1e3:+.1f} kB "
              f"rss per block, {b['total'] / b['computed']:.1f} driver requests per block, wall {b['wall']:.1f} s")

    print("\n## Growth laws (a + b x blocks + c x stations, non-negative least squares) and the extrapolation to "
          f"{TARGET_STATIONS} stations x {TARGET_YEARS} years ({TARGET_BLOCKS / 1e6:.1f} M blocks)\n")

    def add(name, values, blocks, unit):
        coef = fit(blocks, xs_s, values)
        at = predict(coef, TARGET_BLOCKS, TARGET_STATIONS)
        fitted = [predict(coef, b, s) for b, s in zip(blocks, xs_s)]
        resid = max(abs(f - v) / max(abs(v), 1e-12) for f, v in zip(fitted, values))
        print(f"{name}: at blocks {[int(b) for b in blocks]}: {[round(v, 4) for v in values]} -> {law(coef, unit)} "
              f"(largest residual {resid:.0%}) -> {human(at, unit)}")
        rows.append((name, law(coef, unit), human(at, unit)))
        return at

    nightly_cpu = nightly_req = 0.0
    for m in MEASURES:
        cpu = add(f"{m} cpu", [med(results[s][m], "cpu") for s in sizes], xs_b[m], "s")
        req = add(f"{m} requests", [med(results[s][m], "total") for s in sizes], xs_b[m], "")
        if m in ("run +1 day", "info", "analyze +1 day"):
            nightly_cpu += cpu
            nightly_req += req
    add("run +1 day wall", [med(results[s]["run +1 day"], "wall") for s in sizes], xs_b["run +1 day"], "s")
    add("run +1 day driver rss growth", [med(results[s]["run +1 day"], "rss") for s in sizes],
        xs_b["run +1 day"], "MB")
    fb = [results[s]["files"][0]["blocks"] for s in sizes]
    add("store files", [results[s]["files"][0]["files"] for s in sizes], fb, "")
    add("store dirs", [results[s]["files"][0]["dirs"] for s in sizes], fb, "")
    # Totals of the full build against the blocks it computed: b is the driver's cost per computed block.
    built = [results[s]["build"][0]["computed"] for s in sizes]
    for key, unit in (("cpu", "s"), ("rss", "MB"), ("total", "")):
        add(f"build (all blocks) driver {key if key != 'total' else 'requests'}",
            [results[s]["build"][0][key] for s in sizes], built, unit)
    rows.append(("nightly +1 day: run + info + analyze cpu", "sum of the three", human(nightly_cpu, "s")))
    rows.append(("nightly +1 day: run + info + analyze requests", "sum of the three", human(nightly_req, "")))
    print(f"\nnightly +1 day at {TARGET_STATIONS} stations x {TARGET_YEARS} years (driver side: run, incl. its "
          f"planning, + info + analyze): {human(nightly_cpu, 's')} cpu, {nightly_req:.3g} store requests")

    print(f"\n## Table (sizes {', '.join(f'{s}x{d}' for s, d in sizes)}, {args.channels} channel(s) at 1 Hz, "
          f"{args.workers} worker(s), medians of nights: "
          f"{', '.join(str(len(results[s]['plan no-op'])) for s in sizes)})\n")
    print(f"| measure | fitted law | {TARGET_STATIONS} stations x {TARGET_YEARS} years |")
    print("|---|---|---|")
    for name, fitted, at in rows:
        print(f"| {name} | {fitted} | {at} |")
    print(f"\n{environment().splitlines()[0]}")


def _warm_imports() -> None:
    """Import what the measured operations use, so the first size's figures hold no import time."""
    import scatflow.analysis.analyze  # noqa: F401
    import scatflow.report  # noqa: F401
    import scatflow.workflow.blocks  # noqa: F401
    import scatflow.workflow.run  # noqa: F401
    import sklearn.cluster  # noqa: F401
    import sklearn.decomposition  # noqa: F401


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        s, d = part.lower().split("x")
        sizes.append((int(s), int(d)))
    return sizes


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4x4,4x16,16x16,16x32", help="STATIONSxDAYS,... (default %(default)s)")
    parser.add_argument("--channels", type=int, default=1, choices=(1, 2, 3))
    parser.add_argument("--nights", type=int, default=3, help="nightly runs per size (medians over them)")
    parser.add_argument("--night-budget", type=float, default=60.0,
                        help="seconds: repeat the nights of a size only if its first took less")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/scatflow-nightly")
    args = parser.parse_args(argv)
    sizes = parse_sizes(args.sizes)
    if len(sizes) < 3:
        parser.error("--sizes: give at least three sizes (three coefficients are fitted)")
    print(environment().splitlines()[0], flush=True)
    work = Path(args.workdir)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    t0 = time.perf_counter()
    pool = work / "pool"
    n = write_pool(pool, max(s for s, _ in sizes), max(d for _, d in sizes) + args.nights, args.channels)
    log(f"archive pool: {n} new day files in {time.perf_counter() - t0:.1f} s")
    _warm_imports()
    results = {}
    with counting():
        for stations, days in sizes:
            log(f"size {stations} stations x {days} days ({stations * days * BLOCKS_PER_DAY} blocks)")
            results[(stations, days)] = measure_size(work / f"s{stations}x{days}", pool, stations, days, args, log)
    report(sizes, results, args)
    print(f"(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
