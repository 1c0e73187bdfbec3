"""Synthetic example data: a day-long stream and a small SDS archive.

Everything here is generated, never downloaded, so that examples, tutorials
and tests run offline and give the same numbers everywhere.

The signal model is the sum of

* background noise: a microseism bump near 0.2 Hz plus a weakly pink floor
  above ~0.7 Hz (Gaussian noise through a fixed FIR filter);
* volcanic-like tremor: daily episodes that start around 09:30 UTC, grow for
  several hours and die away shortly before midnight; three harmonics of a
  slowly wandering fundamental (about 1.1-2 Hz, so lines up to ~6 Hz) plus a
  little band-limited (1-5 Hz) noise, amplitude-modulated on minute scales;
* transient events: 30-40 per UTC day at random times, Gutenberg-Richter
  magnitudes (b = 1), impulsive onset and exponential coda, band-limited to
  2-15 Hz (capped below Nyquist), with a P and an S arrival whose amplitudes
  differ by component (P strongest on Z, S on the horizontals).

The generator is a pure function of *absolute* sample index: every random
stream is seeded from ``seed`` and what it describes (a station, a trace id,
a UTC day, a fixed-size block of samples), never from the requested span.
So any span of any length gives bit-identical samples where spans overlap
(with a given NumPy build; another FFT implementation may move a rare sample
by one count): ``synthetic_day`` for 2015-12-05 equals the 2015-12-05 day
files of ``write_archive``, and a window across midnight in the archive is
exactly the continuous signal.

Amplitudes are integer counts of a low-gain recorder: quiet-night noise of
about 10-15 counts RMS, tremor peaking near 50 counts RMS, event peaks from
tens of counts to a few 10^5. Sample-to-sample differences stay small most
of the time so that STEIM2 packs them tightly (about 0.7 byte per sample).
"""

from __future__ import annotations

import math
import operator
import os
import pathlib
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

from obspy import Stream, Trace, UTCDateTime
from obspy.clients.filesystem.sds import SDS_FMTSTR

from .model import DAY_S, render, sample_index

__all__ = ["synthetic_day", "write_day", "write_archive", "write_inventory", "station_inventory"]

# The default archive: (network, station, location, sampling rate in Hz,
# channels). The gap and the missing day are placed on the middle day.
_ARCHIVE_STATIONS = (
    ("X9", "SV13", "", 50.0, ("HHZ", "HHN", "HHE")),
    ("X9", "SV15", "", 50.0, ("HHZ", "HHN", "HHE")),
    ("X9", "SV20", "00", 20.0, ("BHZ", "BHN", "BHE")),
)
# Station coordinates for the archive's StationXML: (latitude, longitude) degrees, elevation m.
_ARCHIVE_COORDS = {"SV13": (46.1520, 7.4510, 1420.0), "SV15": (46.1605, 7.4702, 1385.0),
                   "SV20": (46.1418, 7.4924, 1530.0)}
# A broadband velocity sensor (120 s corner, poles at 2*pi*50 Hz) with its digitiser:
# zeros and poles in rad/s, gain in counts per m/s at 1 Hz.
_SENSOR_ZEROS = (0j, 0j)
_SENSOR_POLES = (-0.037 + 0.037j, -0.037 - 0.037j, -222.1 + 222.1j, -222.1 - 222.1j)
_SENSOR_GAIN = 6.0e8
_GAP_ID = "X9.SV15..HHZ"
_GAP_OFFSET_S = (13 * 3600 + 20 * 60, 13 * 3600 + 25 * 60)  # into the day
_MISSING_STATION = "X9.SV20.00"



# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def synthetic_day(
    start="2015-12-04T00:00:00",
    sampling_rate: float = 50.0,
    network: str = "X9",
    station: str = "SV13",
    location: str = "",
    channels=("HHZ", "HHN", "HHE"),
    duration_s: float = 86400.0,
    seed: int = 0,
) -> Stream:
    """Make a synthetic multi-component stream (by default one day, 3 channels).

    Quiet night-time noise, tremor from about 09:30 UTC that grows over
    hours and fades before midnight, and 30-40 transient events per day.
    Deterministic: the same arguments always give the same samples, and two
    calls whose spans overlap give identical samples on the overlap.

    Parameters
    ----------
    start : str or obspy.UTCDateTime
        Time of the first sample (UTC).
    sampling_rate : float
        Sampling rate in Hz (> 0).
    network, station, location : str
        SEED codes; they also select the station's random gains and noise.
    channels : sequence of str
        Channel codes, one trace each. A code ending in ``Z`` is treated as
        vertical (stronger P and tremor), any other as horizontal.
    duration_s : float
        Duration in seconds; the stream has ``round(duration_s *
        sampling_rate)`` samples per channel.
    seed : int
        Non-negative scenario seed. The same seed gives the same tremor
        episodes and event catalogue at every station.

    Returns
    -------
    obspy.Stream
        One ``int32`` trace (counts) per channel, in the order of
        ``channels``, each starting exactly at ``start``.
    """
    t0 = UTCDateTime(start)
    fs = _positive_rate(sampling_rate)
    npts = round(float(duration_s) * fs)
    if npts < 0:
        raise ValueError(f"duration_s must be >= 0, got {duration_s!r}")
    channels = tuple(channels)
    threads = min(4, os.cpu_count() or 1)
    k0 = sample_index(t0, fs)
    data = render(_seed(seed), network, station, location, channels, fs, k0, npts, threads)
    traces = []
    for code, row in zip(channels, data):
        header = {
            "network": network,
            "station": station,
            "location": location,
            "channel": code,
            "sampling_rate": fs,
            "starttime": t0,
        }
        traces.append(Trace(data=row, header=header))
    return Stream(traces)


def write_day(path, **kwargs) -> pathlib.Path:
    """Write :func:`synthetic_day` to one miniSEED file (STEIM2, 4096-byte records).

    Parameters
    ----------
    path : str or os.PathLike
        Output file; missing parent directories are created, an existing file
        is overwritten.
    **kwargs
        Passed to :func:`synthetic_day`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_mseed(synthetic_day(**kwargs), path)
    return path


def write_archive(root, start="2015-12-04", days: int = 3, seed: int = 0) -> dict:
    """Write a small synthetic SDS archive (SeisComP layout) under ``root``.

    Three stations, each one continuous signal over the whole span, cut into
    day files exactly at midnight, so data read across midnight is seamless:

    * ``X9.SV13.`` and ``X9.SV15.``: 50 Hz, ``HHZ``, ``HHN``, ``HHE``;
    * ``X9.SV20.00``: 20 Hz, ``BHZ``, ``BHN``, ``BHE``.

    All stations see the same tremor episodes and event catalogue (with
    station-dependent gains and delays). Files are
    ``ROOT/YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY`` (one per
    channel-day, STEIM2, 4096-byte records), readable with
    :class:`obspy.clients.filesystem.sds.Client`. On the middle day (index
    ``days // 2``) two defects are planted: ``X9.SV15..HHZ`` lacks the
    samples from 13:20:00 (inclusive) to 13:25:00 (exclusive), so its file
    holds two traces, and all ``X9.SV20.00`` files of that day are absent.
    A 50 Hz channel-day takes about 3 MB and a 20 Hz one about 1.4 MB: three
    days (24 files) are about 60 MB, written in about 5 s on two cores.

    Parameters
    ----------
    root : str or os.PathLike
        Archive root; created if needed. Existing files are overwritten.
    start : str or obspy.UTCDateTime
        First day (UTC); must be a midnight.
    days : int
        Number of consecutive days (>= 1).
    seed : int
        Scenario seed, as in :func:`synthetic_day`.

    Returns
    -------
    dict
        ``root`` (str), ``start`` and ``end`` (ISO 8601 UTC, end exclusive),
        ``days`` (ISO dates), ``seed``, ``stations`` (``"NET.STA.LOC"`` ->
        ``{"sampling_rate": Hz, "channels": [full SEED ids]}``), ``gap``
        (``id``, ``start`` = first missing sample, ``end`` = first sample
        after the gap), ``missing`` (``station`` as ``"NET.STA.LOC"``,
        ``day`` as an ISO date) and ``files`` (paths relative to ``root``).
    """
    root = pathlib.Path(root)
    t0 = UTCDateTime(start)
    if t0.ns % (DAY_S * 10**9):
        raise ValueError(f"start must be a midnight (UTC), got {t0.isoformat()}")
    days = operator.index(days)
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    seed = _seed(seed)

    defect_day = t0 + (days // 2) * DAY_S
    gap_start = defect_day + _GAP_OFFSET_S[0]
    gap_end = defect_day + _GAP_OFFSET_S[1]
    day_starts = [t0 + i * DAY_S for i in range(days)]

    stations = {
        f"{net}.{sta}.{loc}": {"sampling_rate": fs, "channels": [f"{net}.{sta}.{loc}.{c}" for c in channels]}
        for net, sta, loc, fs, channels in _ARCHIVE_STATIONS
    }
    tasks = [
        (spec, day)
        for spec in _ARCHIVE_STATIONS
        for day in day_starts
        if not (".".join(spec[:3]) == _MISSING_STATION and day == defect_day)
    ]

    def render_day(task):
        (net, sta, loc, fs, channels), day = task
        # render() is a pure function of the absolute sample index, so one
        # render per day is bit-identical to slicing one render of the whole
        # span (the tests check this across midnight), and keeps memory to a
        # day per task.
        k0 = sample_index(day, fs)
        return k0, render(seed, net, sta, loc, channels, fs, k0, sample_index(day + DAY_S, fs) - k0)

    files = []
    for net, sta, loc, fs, channels in _ARCHIVE_STATIONS:
        if f"{net}.{sta}.{loc}" == _MISSING_STATION:
            # A file left by an earlier run with other ``days`` would fill the hole.
            for code in channels:
                (root / _sds_path(defect_day, net, sta, loc, code)).unlink(missing_ok=True)
    gap = (gap_start, gap_end)
    # Rendering is NumPy-bound and releases the GIL; writing stays in this
    # thread because libmseed's packing is not known to be thread-safe.
    with ThreadPoolExecutor(max_workers=max(1, min(len(tasks), os.cpu_count() or 1, 8))) as pool:
        for (spec, day), (k0, data) in zip(tasks, pool.map(render_day, tasks)):
            files += _write_station_day(root, spec, day, k0, data, gap if day == defect_day else None)

    return {
        "root": str(root),
        "start": t0.isoformat(),
        "end": (t0 + days * DAY_S).isoformat(),
        "days": [d.date.isoformat() for d in day_starts],
        "seed": seed,
        "stations": stations,
        "gap": {"id": _GAP_ID, "start": gap_start.isoformat(), "end": gap_end.isoformat()},
        "missing": {"station": _MISSING_STATION, "day": defect_day.date.isoformat()},
        "files": sorted(files),
    }



def station_inventory(channels, start="2015-01-01", coords=None):
    """An ObsPy Inventory giving each channel the example's velocity sensor.

    Parameters
    ----------
    channels : iterable of (str, float)
        Full SEED ids ``NET.STA.LOC.CHA`` with their sampling rates (Hz).
    start : str or UTCDateTime
        Start of every channel epoch (open-ended).
    coords : dict, optional
        ``STA`` -> (latitude, longitude, elevation m); default: the archive's, or (0, 0, 0).

    Notes
    -----
    Built with :meth:`obspy.core.inventory.response.Response.from_paz`: poles
    ``-0.037 +/- 0.037j`` (a 120 s sensor) and ``-222.1 +/- 222.1j`` rad/s, two
    zeros at 0, ``6e8`` counts per m/s at 1 Hz, the normalisation factor set so
    the response's modulus at 1 Hz is exactly the gain.
    """
    import numpy as np
    from obspy.core.inventory import Channel, Inventory, Network, Station
    from obspy.core.inventory.response import Response

    coords = coords or _ARCHIVE_COORDS
    s = 2j * np.pi * 1.0
    a0 = 1.0 / abs(np.prod([s - z for z in _SENSOR_ZEROS]) / np.prod([s - p for p in _SENSOR_POLES]))
    start = UTCDateTime(start)
    networks: dict = {}
    for seed_id, rate in channels:
        net, sta, loc, cha = seed_id.split(".")
        lat, lon, elev = coords.get(sta, (0.0, 0.0, 0.0))
        network = networks.setdefault(net, Network(net))
        station = next((x for x in network.stations if x.code == sta), None)
        if station is None:
            station = Station(sta, lat, lon, elev, start_date=start)
            network.stations.append(station)
        response = Response.from_paz(list(_SENSOR_ZEROS), list(_SENSOR_POLES), _SENSOR_GAIN, stage_gain_frequency=1.0,
                                     input_units="M/S", output_units="COUNTS", normalization_frequency=1.0,
                                     normalization_factor=float(a0))
        station.channels.append(Channel(cha, loc, lat, lon, elev, 0.0, sample_rate=float(rate), start_date=start,
                                        response=response))
    return Inventory(list(networks.values()), source="scatflow synthetic example")


def write_inventory(path, stations: dict, start="2015-01-01") -> pathlib.Path:
    """Write the StationXML of an archive's stations (see :func:`station_inventory`).

    Parameters
    ----------
    path : str or os.PathLike
        The StationXML file to write.
    stations : dict
        ``write_archive(...)["stations"]``: ``"NET.STA.LOC"`` -> ``{"sampling_rate", "channels"}``.
    start : str or UTCDateTime
        Start of the channel epochs.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = [(c, spec["sampling_rate"]) for spec in stations.values() for c in spec["channels"]]
    station_inventory(channels, start).write(str(path), format="STATIONXML")
    return path


# --------------------------------------------------------------------------
# Helpers: seeds, time grid, I/O
# --------------------------------------------------------------------------


def _write_station_day(root: pathlib.Path, spec, day: UTCDateTime, k0: int, data, gap) -> list[str]:
    """Write one station-day's channel files (``_GAP_ID`` split around ``gap``); their SDS paths."""
    net, sta, loc, fs, channels = spec
    files = []
    for code, row in zip(channels, data):
        pieces = [(0, row.size)]
        if f"{net}.{sta}.{loc}.{code}" == _GAP_ID and gap is not None:
            g0, g1 = sample_index(gap[0], fs) - k0, sample_index(gap[1], fs) - k0
            pieces = [(0, g0), (g1, row.size)]
        header = {"network": net, "station": sta, "location": loc, "channel": code, "sampling_rate": fs}
        stream = Stream(
            [Trace(data=row[i:j], header=dict(header, starttime=_index_time(k0 + i, fs))) for i, j in pieces]
        )
        rel = _sds_path(day, net, sta, loc, code)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_mseed(stream, path)
        files.append(rel)
    return files


def _seed(seed) -> int:
    seed = operator.index(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return seed


def _positive_rate(sampling_rate) -> float:
    fs = float(sampling_rate)
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"sampling_rate must be a positive number of Hz, got {sampling_rate!r}")
    return fs


def _index_time(k: int, fs: float) -> UTCDateTime:
    return UTCDateTime(ns=round(Fraction(k) / Fraction(fs) * 10**9))


def _sds_path(day: UTCDateTime, net: str, sta: str, loc: str, cha: str) -> str:
    return SDS_FMTSTR.format(
        year=day.year, doy=day.julday, network=net, station=sta, location=loc, channel=cha, sds_type="D"
    )


def _write_mseed(stream: Stream, path: pathlib.Path) -> None:
    stream.write(os.fspath(path), format="MSEED", encoding="STEIM2", reclen=4096)
