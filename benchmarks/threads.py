"""Why a second CPU helps the kernel more in one precision than the other: scaling probes.

Run by hand::

    python benchmarks/threads.py [--repeats 3] [--windows 200]

For each probe it times one copy alone and two copies at once, as two threads
of one process (the kernel's own thread pool) and as two processes, and
prints the scaling ``2 x alone / together`` (2.0: the second CPU doubles the
throughput; 1.0: it adds nothing). The probes separate the causes:

* **core** -- arithmetic on 4 kB that stays in L1: two CPUs that are one
  physical core (SMT siblings, or vCPUs the host maps to one) scale well
  below 2 here, independent cores near 2;
* **memory** -- copying 256 MB arrays: what the memory bus gives two streams;
* **kernel float64 / float32** -- ``ScatteringNetwork.transform`` on the
  tutorial network (``--windows`` windows of 3 channels at 50 Hz).

Threads scaling below processes means the process holds the GIL too long
(the kernel releases it in its FFTs and selections); both low with the core
probe near 2 means shared caches or memory bandwidth.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import environment, median  # noqa: E402

LAYERS = ({"octaves": 6, "resolution": 4, "quality": 2}, {"octaves": 6, "resolution": 1, "quality": 2})


def _core(_=None) -> None:
    x = np.linspace(0.0, 1.0, 512)
    for _ in range(60000):
        np.sin(x, out=x)


def _memory(_=None) -> None:
    a, b = np.ones(32 << 20), np.empty(32 << 20)
    for _ in range(20):
        np.copyto(b, a)


_NET = {}


def _kernel(dtype: str, windows: int) -> None:
    from scatflow.scattering.network import ScatteringNetwork

    if "net" not in _NET:
        _NET["net"] = ScatteringNetwork(*LAYERS, bins=2000, sampling_rate=50.0)
        _NET["x"] = np.random.default_rng(0).standard_normal((windows, 3, 2000))
    _NET["net"].transform(_NET["x"], reduce_type="median", dtype=np.dtype(dtype), threads=1)


def _probe(name: str, windows: int):
    if name == "core":
        return _core
    if name == "memory":
        return _memory
    return lambda _=None: _kernel(name.split()[1], windows)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _threads_together(fn) -> float:
    ts = [threading.Thread(target=fn) for _ in range(2)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return time.perf_counter() - t


def _in_child(args) -> float:
    name, windows, start_at = args
    fn = _probe(name, windows)
    fn()  # warm: imports, network, buffers
    while time.time() < start_at:
        time.sleep(0.001)
    return _timed(fn)


def _processes_together(pool, name: str, windows: int) -> float:
    start_at = time.time() + 2.0
    t = pool.map(_in_child, [(name, windows, start_at)] * 2)
    return max(t)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--windows", type=int, default=200)
    args = parser.parse_args(argv)
    print(environment(), flush=True)
    probes = ["core", "memory", "kernel float64", "kernel float32"]
    res = {p: {"alone": [], "threads": [], "processes": []} for p in probes}
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        for rep in range(args.repeats):
            for p in probes:
                fn = _probe(p, args.windows)
                fn()  # warm
                res[p]["alone"].append(_timed(fn))
                res[p]["threads"].append(_threads_together(fn))
                res[p]["processes"].append(_processes_together(pool, p, args.windows))
                print(f"  round {rep + 1}: {p:15s} alone {res[p]['alone'][-1]:6.2f} s, two threads "
                      f"{res[p]['threads'][-1]:6.2f} s, two processes {res[p]['processes'][-1]:6.2f} s", flush=True)
    print(f"\nscaling with a second CPU (2 x alone / together; 2.0 is perfect), medians of {args.repeats}")
    for p in probes:
        alone = median(res[p]["alone"])
        print(f"  {p:15s} threads x{2 * alone / median(res[p]['threads']):4.2f}   "
              f"processes x{2 * alone / median(res[p]['processes']):4.2f}   (alone {alone:.2f} s)")


if __name__ == "__main__":
    main()
