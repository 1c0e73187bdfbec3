"""The scatseisnet tutorial's notebook steps, done with the scatflow API.

Reads one day of three-component miniSEED, builds the tutorial's two-layer
scattering network (40 s windows), computes the pooled scattering
coefficients of every window, saves the network design and the coefficients,
and plots the first-order scalogram of the vertical channel.

Usage
-----
::

    python workflows/notebook.py [DAY.mseed] [--start UTC] [--end UTC] [--out DIR]

Without ``DAY.mseed`` a synthetic day (2015-12-04, station X9.SV13, 50 Hz) is
generated with :func:`scatflow.synthetic.write_day`. The file must hold one
station (``NET.STA.LOC``) at one sampling rate.

Outputs (in ``--out``, default the current folder)
--------------------------------------------------
network.json
    The design, readable with ``scatflow.load_network``.
features.zarr
    The coefficients as an xarray Dataset (``order_1``, ``order_2``,
    ``coverage``; dimensions ``time``, ``channel``, ``f1``, ``f2``); open it
    with ``xr.open_zarr(path, consolidated=False)``.
scalogram.png
    First-order coefficients of the Z channel against time and frequency.
"""

import argparse
import tempfile
from pathlib import Path

import dask
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import obspy
from dask.diagnostics import ProgressBar
from matplotlib.colors import LogNorm

import scatflow
from scatflow.synthetic import write_day

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("mseed", nargs="?", help="miniSEED file of one station (default: a synthetic day)")
parser.add_argument("--start", help="UTC start of the part to process (default: first sample)")
parser.add_argument("--end", help="UTC end, exclusive (default: just after the last sample)")
parser.add_argument("--out", default=".", help="output folder (default: the current one)")
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
start = obspy.UTCDateTime(args.start) if args.start else None
end = obspy.UTCDateTime(args.end) if args.end else None

# 1. Read the seismograms. Reading only [start, end] keeps memory small when a
#    long file is processed in parts; the network needs no preprocessing.
if args.mseed:
    stream = obspy.read(args.mseed, starttime=start, endtime=end)
else:
    with tempfile.TemporaryDirectory() as tmp:
        # Generated, never downloaded: the example runs offline.
        stream = obspy.read(write_day(Path(tmp) / "day.mseed"), starttime=start, endtime=end)
print(stream)

# 2. The tutorial's network: 40 s windows; the first layer resolves 4 filters
#    per octave over 6 octaves below Nyquist (the spectral content), the second
#    1 per octave (the modulations of each first-layer envelope).
rate = stream[0].stats.sampling_rate
network = scatflow.ScatteringNetwork(
    {"octaves": 6, "resolution": 4, "quality": 2},
    {"octaves": 6, "resolution": 1, "quality": 2},
    bins=int(round(40.0 * rate)),
    sampling_rate=rate,
)
# JSON rather than a pickle: human-readable and safe to load.
network.save(out / "network.json")

# 3. Windows overlapping by half (a 20 s hop), median-pooled, as in the
#    tutorial. transform_stream only *describes* the computation (a lazy,
#    labeled xarray Dataset backed by dask); nothing runs yet. Windows missing
#    any sample would hold NaN rather than coefficients of zero-padding.
ds = scatflow.transform_stream(stream, network, overlap=0.5, reduce="median", dtype=np.float32,
                               start=start, end=end)
print(ds)

# 4. Compute once, in parallel. The threaded scheduler needs no setup; each
#    chunk of windows runs in NumPy code that releases the GIL. For a long
#    file on a big machine, a local cluster works the same way:
#        from dask.distributed import Client; client = Client()
#    (then call ds.compute() without the `with dask.config.set(...)` line).
with dask.config.set(scheduler="threads"), ProgressBar():
    ds = ds.compute()

# 5. Save. Explicit time units: xarray would otherwise infer coarse units
#    from the first times, which cannot hold every window start exactly.
#    No consolidated metadata: a plain open is never stale.
ds.to_zarr(out / "features.zarr", mode="w", consolidated=False,
           encoding={"time": {"units": "nanoseconds since 1970-01-01", "dtype": "int64"}})

# 6. The first-order scalogram of the vertical channel. Coefficients span
#    orders of magnitude (quiet noise to events), hence the log colour scale;
#    the filter centres are spaced logarithmically, hence the log frequency
#    axis. Each window is drawn at its centre time.
z = next(c for c in ds.channel.values if c.endswith("Z"))
scalogram = ds.order_1.sel(channel=z)  # (time, f1)
centres = ds.time.values + np.timedelta64(int(round(ds.attrs["window_s"] * 1e9)), "ns") // 2
values = scalogram.values.T  # (f1, time): frequency on the vertical axis
finite = values[np.isfinite(values) & (values > 0)]
norm = LogNorm(*np.percentile(finite, [1, 99.9])) if finite.size else None

fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
mesh = ax.pcolormesh(centres, ds.f1.values, values, norm=norm, shading="nearest", rasterized=True)
ax.set_yscale("log")
ax.set_ylabel("Frequency (Hz)")
locator = mdates.AutoDateLocator()
ax.xaxis.set_major_locator(locator)
ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
ax.set_xlabel("Time (UTC)")
ax.set_title(f"First-order scattering coefficients, {z}")
fig.colorbar(mesh, ax=ax, label=f"{ds.attrs['reduce']}-pooled coefficient")
fig.savefig(out / "scalogram.png", dpi=120)
plt.close(fig)
print(f"wrote {out / 'network.json'}, {out / 'features.zarr'} and {out / 'scalogram.png'}")
