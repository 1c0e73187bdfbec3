"""Median selection on the kernel's own moduli: NumPy's partition against a bracketed select.

Run by hand::

    python benchmarks/selection.py [--windows 8] [--repeats 9]

The median is the kernel's largest stage where NumPy's ``partition`` has no
SIMD code (NumPy before 2.0, or a processor without AVX2). This script
measures, on the layer-1 and layer-2 moduli of the tutorial network
(``bins=2000``, random three-channel windows), the CPU time per sample of

* ``kernel``: the kernel's median (:func:`scatflow.scattering.kernel.numpy_backend.median_inplace`,
  one in-place ``partition`` of the unsigned-integer view);
* ``bracket sS zZ``: a median that never partitions a whole row: a strided
  sample (every S-th value) is partitioned for two order statistics that
  bracket the median with Z standard errors to spare; one comparison pass
  counts what lies below and above the bracket; the values inside it are
  gathered into a padded array, partitioned, and the median read off. Rows
  whose bracket misses the median fall back to the full partition.

Every result is checked bit for bit against ``np.median``. The script
prints the fraction of samples inside the bracket (``inside``), the rows that
fell back, and each method's time per sample; run it once normally and once
with ``NPY_DISABLE_CPU_FEATURES="X86_V3 X86_V4 AVX512_ICL"`` (NumPy 2.4
names) to see the scalar case.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import environment, median  # noqa: E402

LAYERS = [
    {"octaves": 6, "resolution": 4, "quality": 2},
    {"octaves": 6, "resolution": 1, "quality": 2},
]
BINS, RATE = 2000, 50.0
_UINT = {4: np.uint32, 8: np.uint64}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    import scatflow
    from scatflow.scattering.kernel.numpy_backend import median_inplace

    print(environment())
    net = scatflow.ScatteringNetwork(*LAYERS, bins=BINS, sampling_rate=RATE)
    x = np.random.default_rng(42).standard_normal((args.windows, 3, BINS))
    methods = {"kernel": median_inplace}
    for stride in (4, 8, 16):
        for z in (2.0, 3.0):
            methods[f"bracket s{stride} z{z:g}"] = _bracketed(stride, z)
    for dtype in (np.float64, np.float32):
        layers = net.transform(x, reduce_type=None, dtype=dtype, threads=1)
        for level, scalograms in enumerate(layers):
            rows = np.ascontiguousarray(scalograms.reshape(-1, BINS))
            want = np.median(rows, axis=-1)
            print(f"\n{np.dtype(dtype).name} layer {level + 1}: {rows.shape[0]} rows of {BINS}, "
                  f"CPU ns per sample, median of {args.repeats}")
            times = {name: [] for name in methods}
            for _ in range(args.repeats):  # interleaved, so machine noise hits all alike
                for name, fn in methods.items():
                    work = rows.copy()
                    t0 = time.process_time()
                    got = fn(work)
                    times[name].append((time.process_time() - t0) / rows.size * 1e9)
                    if got.tobytes() != want.tobytes():
                        raise SystemExit(f"{name}: not bitwise equal to np.median")
            for name, fn in methods.items():
                extra = ""
                if name != "kernel":
                    stats = fn.stats(rows.copy())
                    extra = f"   inside {stats[0]:5.1%}   fell back {stats[1]:5.1%} of rows"
                print(f"  {name:16s} {median(times[name]):5.2f}{extra}")


def _bracketed(stride: int, z: float):
    """A bracketed median over the last axis of 2-D non-negative floats (see the module text)."""

    def select(a: np.ndarray, stats: list | None = None) -> np.ndarray:
        rows, n = a.shape
        utype = _UINT[a.itemsize]
        u = a.view(utype)
        half = n // 2
        lowest = half - 1 if n % 2 == 0 else half  # the lower of the two middle ranks
        sample = u[:, ::stride].copy()
        ns = sample.shape[1]
        centre = half * ns / n
        spare = math.ceil(z * math.sqrt(ns) / 2) + 1  # z standard errors of a sample median's rank
        jlo, jhi = max(0, int(centre) - spare), min(ns - 1, math.ceil(centre) + spare)
        sample.partition([jlo, jhi], axis=-1)
        lo, hi = sample[:, jlo : jlo + 1], sample[:, jhi : jhi + 1]
        below = u < lo
        upto = u <= hi
        n_below = np.add.reduce(below.view(np.uint8), axis=-1, dtype=np.uint16).astype(np.intp)
        n_upto = np.add.reduce(upto.view(np.uint8), axis=-1, dtype=np.uint16).astype(np.intp)
        hit = (n_below <= lowest) & (n_upto > half)
        inside = np.not_equal(upto, below, out=upto)
        missed = np.flatnonzero(~hit)
        inside[missed] = False
        counts = np.where(hit, n_upto - n_below, 0)
        values = u[inside]
        # Left-pad each row with zeros so the median's rank is one column for all rows.
        rank = np.where(hit, half - n_below, 0)
        top = int(rank.max())
        pad = top - rank
        width = int((pad + counts).max())
        packed = np.full((rows, width), np.iinfo(utype).max, dtype=utype)
        packed[np.arange(width)[None, :] < pad[:, None]] = 0
        starts = np.cumsum(counts) - counts
        dest = np.repeat(np.arange(rows) * width + pad - starts, counts) + np.arange(values.size)
        packed.ravel()[dest] = values
        packed.partition(top, axis=-1)
        floats = packed.view(a.dtype)
        result = floats[:, top].copy()
        if n % 2 == 0:
            result = (floats[:, :top].max(axis=-1) + result) / 2
        if missed.size:
            from scatflow.scattering.kernel.numpy_backend import median_inplace

            result[missed] = median_inplace(a[missed])
        if stats is not None:
            stats.extend([values.size / a.size, missed.size / rows])
        return result

    def with_stats(a: np.ndarray) -> tuple[float, float]:
        out: list = []
        select(a, out)
        return out[0], out[1]

    select.stats = with_stats
    return select


if __name__ == "__main__":
    main()
