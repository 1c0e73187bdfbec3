"""Kernel throughput: scatflow vs scatseisnet 0.4.1 on the tutorial network.

Run by hand (needs the ``test`` extra for the reference)::

    python benchmarks/kernel.py [--windows 200] [--repeats 3] [--baseline DIR] [--no-reference]
                                [--floor-windows 40] [--floor-repeats 7]

Both implementations transform the same random three-channel windows
(``bins=2000``, ``sampling_rate=50``, layers {6,4,2} and {6,1,2}, median
pooling), interleaved in one process so machine noise hits both alike. Prints
milliseconds per window (median over repeats), the throughput ratio against
scatseisnet, and the extra peak resident memory of each run.

``--baseline DIR`` also times the scatflow found in ``DIR`` (e.g. a checkout
of an earlier commit), loaded under another module name and interleaved with
the current one, to measure a kernel change before and after in one process.

Then, on one thread, it measures how far the kernel is from its FFTs: the
*FFT floor* is the CPU time of exactly the transforms any exact kernel does
(per window: the ``rfft`` of every input row and of every modulus that feeds
a next layer, one complex inverse transform per scalogram row; 579
transforms of 2000 points on the tutorial network), at the kernel's
precision, in row groups of the kernel's group size, into reused buffers,
results dropped. The kernel and the floor run interleaved in one process and
are timed with ``time.process_time`` (CPU time, so other processes on a
shared machine count less); the script prints the medians and their ratio,
kernel / floor, per precision. A third, instrumented run times each stage
of the kernel (a backend whose calls are timed; the calls' own overhead
makes its total slightly larger than the kernel's).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import environment, measure, median  # noqa: E402

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
    parser.add_argument("--floor-windows", type=int, default=40, help="windows per single-thread run")
    parser.add_argument("--floor-repeats", type=int, default=7, help="interleaved single-thread repeats")
    args = parser.parse_args(argv)

    import scatflow

    print(environment(), flush=True)
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

    single_thread(scatflow, x[: args.floor_windows], args.floor_repeats)


def single_thread(scatflow, x: np.ndarray, repeats: int) -> None:
    """Print kernel / FFT-floor CPU-time ratios and per-stage times, one thread."""
    from scatflow.scattering.kernel import numpy_backend

    net = scatflow.ScatteringNetwork(*LAYERS, bins=BINS, sampling_rate=RATE)
    n = x.shape[0]
    runs, timed = {}, {}
    for dtype in (np.float64, np.float32):
        name = np.dtype(dtype).name
        stages = TimedBackend()
        stages.levels(net.spectra(dtype, stages))
        runs[f"kernel {name}"] = partial(net.transform, x, reduce_type=np.median, threads=1, dtype=dtype)
        runs[f"floor {name}"] = fft_floor(x.shape, [len(b.spectra) for b in net.banks], dtype)
        runs[f"stages {name}"] = partial(net.transform, x, reduce_type=np.median, threads=1, dtype=dtype,
                                         backend=stages)
        timed[name] = stages
    for fn in runs.values():
        fn()  # warm plans, caches and buffers
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            if name.startswith("stages"):
                timed[name.split()[1]].clear()
            t0 = time.process_time()
            fn()
            times[name].append((time.process_time() - t0) / n)
            if name.startswith("stages"):
                timed[name.split()[1]].keep()
    print(f"\none thread, {n} windows, CPU time (process_time), median of {repeats} interleaved repeats")
    for name in timed:
        k, f = median(times[f"kernel {name}"]), median(times[f"floor {name}"])
        print(f"{name}: kernel {1e3 * k:6.2f} ms/window   FFT floor {1e3 * f:6.2f} ms/window   "
              f"kernel / floor {k / f:4.2f}")
    print("\nper-stage CPU time, ms/window (instrumented run; level 1 = first layer)")
    header = ["forward", "multiply", "inverse", "modulus", "pooling"]
    for name, stages in timed.items():
        table = stages.medians(n)
        for level in sorted(table):
            row = table[level]
            cells = "  ".join(f"{h} {row.get(h, 0.0):5.2f}" for h in header)
            print(f"{name} level {level + 1}: {cells}   total {sum(row.values()):5.2f}")
    del numpy_backend


def fft_floor(shape: tuple, sizes: list[int], dtype):
    """A function doing, for ``shape[0]`` windows, exactly the FFTs of an exact kernel; results dropped.

    Per window: ``rfft`` of the input rows and of each layer's modulus rows
    that feed a next layer, and one complex inverse transform of every
    scalogram row, in groups of rows of the kernel's group size.
    """
    import scipy.fft

    from scatflow.scattering.kernel.numpy_backend import GROUP_BYTES

    n, channels, bins = shape
    ctype = np.result_type(dtype, np.complex64)
    rows = [channels]
    for size in sizes:
        rows.append(rows[-1] * size)
    forward_rows, inverse_rows = sum(rows[:-1]), sum(rows[1:])
    group = max(1, GROUP_BYTES // (bins * np.dtype(ctype).itemsize))
    rng = np.random.default_rng(0)
    real = rng.standard_normal((min(group, forward_rows), bins)).astype(dtype)
    cplx = np.empty((min(group, inverse_rows), bins), dtype=ctype)
    cplx[:] = rng.standard_normal(cplx.shape)

    def run() -> None:
        for _ in range(n):
            for a in range(0, forward_rows, group):
                scipy.fft.rfft(real[: min(group, forward_rows - a)], axis=-1, workers=1)
            for a in range(0, inverse_rows, group):
                scipy.fft.ifft(cplx[: min(group, inverse_rows - a)], axis=-1, overwrite_x=True, workers=1)

    return run


class TimedBackend:
    """The NumPy backend with every call's CPU time added to its stage and cascade level."""

    def __init__(self) -> None:
        from scatflow.scattering.kernel.numpy_backend import NumpyBackend

        base = NumpyBackend()
        self._base = base
        self.name, self.device = "numpy-timed", base.device
        self.group_bytes, self.inner_batch = base.group_bytes, base.inner_batch
        self._levels: dict = {}
        self._runs: list[dict] = []
        self.clear()

    def levels(self, spectra: list) -> None:
        """Tell which cascade level each bank array (as passed to ``multiply``) is."""
        self._levels = {id(s): i for i, s in enumerate(spectra)}

    def clear(self) -> None:
        self._t: dict = {}
        self._level = 0
        self._pending = 0.0
        self._stack: list[int] = []

    def keep(self) -> None:
        self._runs.append(self._t)

    def medians(self, n: int) -> dict:
        out: dict = {}
        for t in self._runs:
            for (level, stage), v in t.items():
                out.setdefault(level, {}).setdefault(stage, []).append(1e3 * v / n)
        return {lv: {st: median(v) for st, v in row.items()} for lv, row in out.items()}

    def _add(self, level, stage, dt) -> None:
        self._t[(level, stage)] = self._t.get((level, stage), 0.0) + dt

    def __getattr__(self, name):
        return getattr(self._base, name)

    def forward(self, u):
        t0 = time.process_time()
        r = self._base.forward(u)
        self._pending += time.process_time() - t0  # its level is known at the next multiply
        return r

    def multiply(self, spec, bank, out):
        self._level = self._levels[id(bank)]
        self._add(self._level, "forward", self._pending)
        self._pending = 0.0
        t0 = time.process_time()
        r = self._base.multiply(spec, bank, out)
        self._add(self._level, "multiply", time.process_time() - t0)
        return r

    def inverse(self, z):
        t0 = time.process_time()
        r = self._base.inverse(z)
        self._add(self._level, "inverse", time.process_time() - t0)
        return r

    def modulus(self, z, out):
        t0 = time.process_time()
        r = self._base.modulus(z, out)
        self._add(self._level, "modulus", time.process_time() - t0)
        self._stack.append(self._level)  # pooled after its children: last in, first out
        return r

    def reduce(self, m, how, index=None):
        level = self._stack.pop()
        t0 = time.process_time()
        r = self._base.reduce(m, how, index)
        self._add(level, "pooling", time.process_time() - t0)
        return r


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
