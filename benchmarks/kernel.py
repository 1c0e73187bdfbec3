"""Kernel throughput: scatflow vs scatseisnet 0.4.1 on the tutorial network.

Run by hand (needs the ``test`` extra for the reference)::

    python benchmarks/kernel.py [--windows 200] [--repeats 3]

Both implementations transform the same random three-channel windows
(``bins=2000``, ``sampling_rate=50``, layers {6,4,2} and {6,1,2}, median
pooling), interleaved in one process so machine noise hits both alike. Prints
milliseconds per window (median over repeats), the throughput ratio against
scatseisnet, and the extra peak resident memory of each run.
"""

from __future__ import annotations

import argparse
import sys
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
    args = parser.parse_args(argv)

    import scatseisnet

    import scatflow

    rng = np.random.default_rng(42)
    x = rng.standard_normal((args.windows, 3, BINS))
    ref_net = scatseisnet.ScatteringNetwork(*LAYERS, bins=BINS, sampling_rate=RATE)
    net = scatflow.ScatteringNetwork(*LAYERS, bins=BINS, sampling_rate=RATE)
    net.transform(x[:4])  # warm caches and thread workspaces, as a long run would
    net.transform(x[:4], dtype=np.float32)

    runs = {
        "scatseisnet": lambda: ref_net.transform(x.copy(), reduce_type=np.median),
        "scatflow float64": lambda: net.transform(x, reduce_type=np.median, threads=args.threads),
        "scatflow float32": lambda: net.transform(
            x, reduce_type=np.median, threads=args.threads, dtype=np.float32
        ),
    }
    times = {k: [] for k in runs}
    mems = {k: [] for k in runs}
    for rep in range(args.repeats):
        for name, fn in runs.items():
            t, m = measure(fn)
            times[name].append(t)
            mems[name].append(m)
            print(f"  repeat {rep + 1}: {name:17s} {1e3 * t / args.windows:7.2f} ms/window", flush=True)

    ref = median(times["scatseisnet"])
    print(f"\n{args.windows} windows x 3 channels, bins={BINS}, median of {args.repeats} interleaved repeats")
    for name in runs:
        t = median(times[name])
        print(
            f"{name:17s} {1e3 * t / args.windows:7.2f} ms/window   "
            f"throughput x{ref / t:5.2f} vs scatseisnet   extra peak RSS {max(mems[name]):6.1f} MB"
        )


if __name__ == "__main__":
    main()
