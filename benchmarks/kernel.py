"""Kernel throughput: scatflow vs scatseisnet 0.4.1 on the tutorial network.

Run by hand (needs the ``test`` extra for the reference)::

    python benchmarks/kernel.py [--windows 200] [--repeats 3] [--baseline DIR] [--no-reference]

Both implementations transform the same random three-channel windows
(``bins=2000``, ``sampling_rate=50``, layers {6,4,2} and {6,1,2}, median
pooling), interleaved in one process so machine noise hits both alike. Prints
milliseconds per window (median over repeats), the throughput ratio against
scatseisnet, and the extra peak resident memory of each run.

``--baseline DIR`` also times the scatflow found in ``DIR`` (e.g. a checkout
of an earlier commit), loaded under another module name and interleaved with
the current one, to measure a kernel change before and after in one process.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import measure, median  # noqa: E402

LAYERS = [
    {"octaves": 6, "resolution": 4, "quality": 2},
    {"octaves": 6, "resolution": 1, "quality": 2},
]
BINS, RATE = 2000, 50.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="scatflow threads (default: all CPUs)")
    parser.add_argument("--baseline", metavar="DIR", help="also time the scatflow package in DIR")
    parser.add_argument("--no-reference", action="store_true", help="do not time scatseisnet")
    args = parser.parse_args(argv)

    import scatflow

    rng = np.random.default_rng(42)
    x = rng.standard_normal((args.windows, 3, BINS))
    runs = {}
    if not args.no_reference:
        import scatseisnet

        ref_net = scatseisnet.ScatteringNetwork(*LAYERS, bins=BINS, sampling_rate=RATE)
        runs["scatseisnet"] = lambda: ref_net.transform(x.copy(), reduce_type=np.median)
    packages = {"scatflow": scatflow}
    if args.baseline:
        packages["baseline"] = load_package(args.baseline, "scatflow_baseline")
    for label, package in packages.items():
        net = package.ScatteringNetwork(*LAYERS, bins=BINS, sampling_rate=RATE)
        for dtype in (np.float64, np.float32):
            net.transform(x[:4], dtype=dtype)  # warm caches and thread workspaces, as a long run would
            runs[f"{label} {np.dtype(dtype).name}"] = partial(
                net.transform, x, reduce_type=np.median, threads=args.threads, dtype=dtype
            )
    times = {k: [] for k in runs}
    mems = {k: [] for k in runs}
    for rep in range(args.repeats):
        for name, fn in runs.items():
            t, m = measure(fn)
            times[name].append(t)
            mems[name].append(m)
            print(f"  repeat {rep + 1}: {name:17s} {1e3 * t / args.windows:7.2f} ms/window", flush=True)

    ref = median(times["scatseisnet"]) if "scatseisnet" in times else None
    print(f"\n{args.windows} windows x 3 channels, bins={BINS}, median of {args.repeats} interleaved repeats")
    for name in runs:
        t = median(times[name])
        versus = f"throughput x{ref / t:5.2f} vs scatseisnet   " if ref else ""
        peak = max(mems[name])
        print(f"{name:17s} {1e3 * t / args.windows:7.2f} ms/window   {versus}extra peak RSS {peak:6.1f} MB")


def load_package(root: str, name: str):
    """Import the ``scatflow`` package under ``root`` as module ``name`` (beside the current one)."""
    init = Path(root).resolve() / "scatflow" / "__init__.py"
    if not init.is_file():
        raise SystemExit(f"--baseline: no scatflow package in {root}")
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    main()
