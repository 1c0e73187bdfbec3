"""``scatflow analyze`` at station-year scale (run by hand).

A store shaped like one station of the tutorial network (50 Hz, 40 s windows, hop 20 s, 3 channels,
24 x 6 filters: 504 features, float32), written directly with structured synthetic coefficients
(``scatflow.synthetic.store``, not the transform), analysed with ``sample = 200000``, 10 components
and 8 clusters on a local cluster. Prints wall time, the driver's peak memory and each worker's,
and the extrapolation to 100 stations on 100 cores.

    python benchmarks/analysis.py --days 30       # a month
    python benchmarks/analysis.py --days 365      # a station-year (1.58 M windows)

Give one span per invocation: the driver's peak (``ru_maxrss``) never decreases within a process.
"""

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TUTORIAL_LAYERS = [{"octaves": 6, "resolution": 4, "quality": 2}, {"octaves": 6, "resolution": 1, "quality": 2}]


def worker_peak() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def one(days: int, workers: int, root: Path) -> dict:
    from distributed import Client, LocalCluster

    from scatflow.analysis.analyze import analyze
    from scatflow.config import parse_config

    n = days * 4320 - 1
    path = root / f"bench{days}.zarr"
    t0 = time.perf_counter()
    # Written by a child process, so this process's peak memory is that of the analysis alone.
    code = ("import sys; sys.path.insert(0, %r); from scatflow.synthetic.store import write_store; "
            "write_store(%r, ['XB.STA01.'], %d, layers=%r, sampling_rate=50.0, block_windows=1080, dtype='float32', k=8)"
            % (str(Path(__file__).resolve().parent.parent), str(path), n, TUTORIAL_LAYERS))
    subprocess.run([sys.executable, "-c", code], check=True)
    t_write = time.perf_counter() - t0
    cfg = parse_config({"input": {"paths": ["unused"]}, "network": {"layers": TUTORIAL_LAYERS},
                        "output": {"store": str(path)},
                        "analysis": {"sample": 200000, "components": 10, "clusters": 8}})
    with LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit="3GB", dashboard_address=None) as lc, \
            Client(lc) as client:
        driver0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        summary = analyze(cfg, log=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
        wall = time.perf_counter() - t0
        peaks = client.run(worker_peak)
    driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    shutil.rmtree(path)
    return {"days": days, "windows": n, "write_s": t_write, "wall_s": wall, "driver_peak": driver,
            "driver_before": driver0, "worker_peaks": sorted(peaks.values()), "summary": summary.text()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--days", type=int, nargs="+", default=[30, 91])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--dir", default=None, help="scratch directory (default: a temporary one)")
    args = p.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="scatflow-bench-"))
    gb = 1024 ** 3
    for days in args.days:
        r = one(days, args.workers, root)
        print(f"{days} days, {r['windows']} windows: store written in {r['write_s']:.0f} s; analyze {r['wall_s']:.1f} s "
              f"on {args.workers} workers ({r['windows'] / r['wall_s']:.0f} windows/s); driver peak "
              f"{r['driver_peak'] / gb:.2f} GB (before analyze, with the cluster up: {r['driver_before'] / gb:.2f} GB); worker peaks "
              + ", ".join(f"{w / gb:.2f} GB" for w in r["worker_peaks"]))
        # The fit is on the driver and fixed-size (the sample); the apply pass scales with windows / cores.
        year = 4320 * 365
        per_core = r["windows"] / (r["wall_s"] * args.workers)
        print(f"  extrapolation, 100 station-years on 100 cores: ~{100 * year / (per_core * 100) / 60:.0f} min "
              "(apply and read pass; plus one fit on the driver)")
        print("  " + r["summary"].splitlines()[0])


if __name__ == "__main__":
    main()
