"""Where a station-day's time goes: each stage of a block as a share of the kernel's time.

Run by hand::

    python benchmarks/profile.py [--repeats 3] [--stage-rounds 1] [--workdir /tmp/scatflow-profile]
                                 [--dtypes float64,float32] [--no-preprocess] [--no-end-to-end]

The data is ``scatflow example``'s synthetic day (3 channels, 50 Hz, 4319
windows of 40 s with 50 % overlap, 4 blocks of 6 h). For each precision, with
and without ``[preprocess]`` (response to velocity with ``pre_filt``, a 1 Hz
zero-phase high-pass, ``sampling_rate = 50``: the kernel's work is the same),
it prints:

* **the stages of each block**, run one after the other in this process, one
  thread, exactly as a worker runs them (the same functions): read and decode
  (``Source.read``, which also hashes each file), alignment or preprocessing
  (``_samples``), coverage, the kernel (``compute_windows``: masking, the
  scattering transform, NaN where coverage is short), assembly (the block's
  summary and the shard's concatenation), encoding and compression (the same
  arrays written into an in-memory copy of the group's arrays, same codecs)
  and the store write (the disk write less that encoding). Each is printed as
  seconds per station-day and as a share of the kernel stage;
* **the kernel alone**: ``ScatteringNetwork.transform`` on all the day's
  windows in one process with as many threads as CPUs (batches of 500), the
  reference of the end-to-end ratio;
* **end to end**: ``scatflow run --overwrite`` in a fresh process (its own
  local Dask cluster, started and stopped), as a ratio to the kernel alone;
  what is not in the stages divided by the CPUs is start-up and scheduling.

Repeats are interleaved (one of each measurement per round) and medians
printed; the per-process peak RSS of the busiest worker is printed for the
end-to-end runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from obspy import UTCDateTime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import environment, median, run_tree  # noqa: E402
from day import PREPROCESS  # noqa: E402 - the same [preprocess] section as the station-day benchmark

STAGES = ("read", "align/preprocess", "coverage", "kernel", "assembly", "encode+compress", "store write")


def configs(work: Path, dtypes: list[str], preprocess: bool) -> dict[str, Path]:
    """The example's config per variant (``float64``, ``float64 + preprocess``...)."""
    from scatflow.synthetic import write_inventory

    out = {}
    base = (work / "config.toml").read_text()
    for dtype in dtypes:
        text = base.replace('dtype = "float32"', f'dtype = "{dtype}"').replace("results.zarr", f"{dtype}.zarr")
        out[dtype] = work / f"{dtype}.toml"
        out[dtype].write_text(text)
        if preprocess:
            out[f"{dtype} + preprocess"] = work / f"{dtype}-pre.toml"
            out[f"{dtype} + preprocess"].write_text(text.replace(f"{dtype}.zarr", f"{dtype}-pre.zarr") + PREPROCESS)
    if preprocess:
        write_inventory(work / "stations.xml", {"X9.SV13.": {"sampling_rate": 50.0,
                                                              "channels": [f"X9.SV13..HH{c}" for c in "ZNE"]}})
    return out


def _memory_twin(group) -> dict:
    """In-memory arrays with the metadata (chunks, shards, codecs) of ``group``'s data arrays."""
    import zarr

    twin = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    out = {}
    for name in ("order_1", "order_2", "coverage"):
        a = group[name]
        out[name] = twin.create_array(name, shape=a.shape, dtype=a.dtype, chunks=a.chunks, shards=a.shards,
                                      compressors=a.compressors, filters=a.filters, fill_value=a.fill_value)
    return out


def stage_profile(cfg_path: Path) -> dict[str, float]:
    """Seconds per stage over the whole day, each block's stages run in turn in this process."""
    import zarr

    from scatflow.config import load_config
    from scatflow.inputs import windows
    from scatflow.inputs.sources import make_source
    from scatflow.store.writer import Store
    from scatflow.workflow import blocks as wb
    from scatflow.workflow import worker as ww
    from scatflow.workflow.plan import make_plan
    from scatflow.workflow.run import prepare_store

    from scatflow.inputs import deconvolve

    deconvolve.clear()  # the response factors as a fresh worker has them: evaluated in this day's blocks
    cfg = load_config(cfg_path)
    path = Path(cfg.output["store"])
    shutil.rmtree(path, ignore_errors=True)
    store = Store(str(path))
    plan = make_plan(cfg, store, fresh=True)
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    t = dict.fromkeys(STAGES, 0.0)
    for task in plan.block_tasks(threads=1, token="profile"):
        twin = _memory_twin(zarr.open_group(str(path), mode="r")[task.station.key])
        grid, params, st = task.grid, task.params, task.station
        net = wb.station_network(params, grid.bins, grid.sampling_rate)
        for run in wb.shards(task.todo_blocks, task.shard):
            parts = []
            for b in run:
                k0, k1 = task.blocks.range(b)
                result = wb.BlockResult(st.key, b, k1 - k0)
                t0, t1 = (UTCDateTime(ns=x) for x in grid.block_read_span(task.blocks, b))
                c = time.perf_counter()
                stream, read = make_source(task.source).read(st, t0, t1)
                t["read"] += time.perf_counter() - c
                c = time.perf_counter()
                aligned = ww._samples(stream, task, b, list(read))
                t["align/preprocess"] += time.perf_counter() - c
                c = time.perf_counter()
                cov = windows.coverage(aligned.recorded, grid.bins, grid.hop, k1 - k0)
                t["coverage"] += time.perf_counter() - c
                c = time.perf_counter()
                orders = wb.compute_windows(net, params, grid, aligned.data, aligned.recorded, cov, 1)
                t["kernel"] += time.perf_counter() - c
                c = time.perf_counter()
                cov = cov.astype(np.float32)
                result.summary = ww.block_summary(st.channels, cov, orders[0])
                parts.append({**{f"order_{i + 1}": o for i, o in enumerate(orders)}, "coverage": cov})
                t["assembly"] += time.perf_counter() - c
            c = time.perf_counter()
            arrays = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
            t["assembly"] += time.perf_counter() - c
            k0 = task.blocks.range(run[0])[0]
            c = time.perf_counter()
            for name, values in arrays.items():
                twin[name][k0:k0 + len(values)] = values
            encode = time.perf_counter() - c
            c = time.perf_counter()
            store.write_windows(st.key, k0, arrays, "profile")
            t["encode+compress"] += encode
            t["store write"] += max(time.perf_counter() - c - encode, 0.0)
    return t


def kernel_alone(cfg_path: Path) -> float:
    """Seconds of ``ScatteringNetwork.transform`` on all the day's windows, all CPUs, batches of 500."""
    import os

    from scatflow.config import load_config
    from scatflow.inputs import windows
    from scatflow.inputs.sources import make_source
    from scatflow.store.writer import Store
    from scatflow.workflow import blocks as wb
    from scatflow.workflow.plan import make_plan

    cfg = load_config(cfg_path)
    plan = make_plan(cfg, Store(str(Path(cfg.output["store"]).with_suffix(".unused"))), fresh=True)
    (sp,) = plan.stations
    grid = sp.grid
    n = sp.n_new
    t0, t1 = (UTCDateTime(ns=x) for x in grid.span_ns(0, n))
    stream, _ = make_source(plan.source.spec()).read(sp.station, t0, t1)
    al = windows.align(stream, sp.station.channels, grid.sample_ns(0), grid.nsamp(0, n), grid.sampling_rate)
    x = np.ascontiguousarray(windows.window_view(al.data, grid.bins, grid.hop, n))
    net = wb.station_network(plan.design.params(), grid.bins, grid.sampling_rate)
    dtype = np.dtype(plan.design.dtype)
    threads = len(os.sched_getaffinity(0))
    c = time.perf_counter()
    for a in range(0, n, 500):
        net.transform(x[a:a + 500], reduce_type=plan.design.reduce, dtype=dtype, threads=threads)
    return time.perf_counter() - c


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/scatflow-profile")
    parser.add_argument("--dtypes", default="float64,float32")
    parser.add_argument("--no-preprocess", action="store_true")
    parser.add_argument("--no-end-to-end", action="store_true")
    parser.add_argument("--stage-rounds", type=int, default=1,
                        help="rounds that also time the stages (in-process, one thread; the first rounds)")
    args = parser.parse_args(argv)
    print(environment(), flush=True)

    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    exe = Path(sys.executable).parent / "scatflow"
    run_tree([str(exe), "example", str(work), "--quiet"])
    cfgs = configs(work, args.dtypes.split(","), not args.no_preprocess)
    stages = {v: [] for v in cfgs}
    alone = {v: [] for v in cfgs}
    e2e = {v: [] for v in cfgs}
    peak = {v: [] for v in cfgs}
    for rep in range(args.repeats):
        for variant, cfg in cfgs.items():
            if rep < args.stage_rounds:
                stages[variant].append(stage_profile(cfg))
            if "preprocess" not in variant:
                alone[variant].append(kernel_alone(cfg))
            if not args.no_end_to_end:
                res = run_tree([str(exe), "run", str(cfg), "--overwrite", "--quiet"])
                e2e[variant].append(res.seconds)
                peak[variant].append(res.peak_largest_child)
            line = f"  round {rep + 1}: {variant:22s}"
            if stages[variant]:
                line += f" stages {sum(stages[variant][-1].values()):6.1f} s (kernel {stages[variant][-1]['kernel']:5.1f})"
            if alone[variant]:
                line += f"  kernel alone {alone[variant][-1]:6.1f} s"
            if e2e[variant]:
                line += f"  end to end {e2e[variant][-1]:6.1f} s"
            print(line, flush=True)

    print(f"\none station-day (3 x 50 Hz, 4319 windows, 4 blocks), medians of {args.repeats} interleaved rounds")
    for variant in cfgs:
        print(f"\n{variant}")
        if stages[variant]:
            med = {s: median([r[s] for r in stages[variant]]) for s in STAGES}
            kern = med["kernel"]
            for s in STAGES:
                print(f"  {s:18s} {med[s]:7.2f} s  {med[s] / kern:7.1%} of the kernel")
            around = sum(v for s, v in med.items() if s != "kernel")
            print(f"  {'around the kernel':18s} {around:7.2f} s  {around / kern:7.1%} of the kernel (one thread)")
        dtype = variant.split()[0]
        ref = median(alone[dtype]) if alone.get(dtype) else None
        if ref:
            print(f"  kernel alone, all CPUs: {ref:.1f} s")
        if e2e[variant]:
            t = median(e2e[variant])
            line = f"  end to end (scatflow run, fresh process): {t:.1f} s"
            if ref:
                line += f" = {t / ref:.2f}x the kernel alone"
            print(line + f"; busiest worker's peak RSS {max(peak[variant]):.0f} MB")
            if stages[variant]:
                import os

                cpus = len(os.sched_getaffinity(0))
                rest = t - sum(med.values()) / cpus
                print(f"  start-up and scheduling (end to end less the stages over {cpus} CPUs): {rest:.1f} s")


if __name__ == "__main__":
    main()
