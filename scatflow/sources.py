"""Waveform sources: what stations and channels exist, and reading a time span of one station.

Two kinds, with one small interface (:class:`Source`): plain file globs
(:class:`FileSource`, headers read once at planning time) and SDS archives
(:class:`SDSSource`, planned from file names; waveforms read through ObsPy's
SDS client). Workers call :meth:`Source.read` for exactly the span a block
needs; it returns the ObsPy stream and the files it touched (provenance).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os
import warnings

import obspy
from obspy import UTCDateTime

from .errors import InputError
from .grid import same_rate




@dataclasses.dataclass(frozen=True)
class Extent:
    """One stretch of one channel in one file (from headers)."""

    path: str
    channel: str
    start_ns: int  # first sample, ns since 1970
    end_ns: int  # last sample, ns since 1970
    sampling_rate: float


@dataclasses.dataclass
class Station:
    """A station's channels as found in the input, for planning.

    Attributes
    ----------
    key : str
        ``NET.STA.LOC`` (the store group name).
    channels : list of str
        Full SEED ids ``NET.STA.LOC.CHA``, sorted.
    sampling_rate : float
        Common sampling rate of the channels, Hz.
    first_ns, last_ns : int or None
        First and last sample time over all channels (ns since 1970), when known.
    """

    key: str
    channels: list[str]
    sampling_rate: float
    first_ns: int | None = None
    last_ns: int | None = None


def matches(seed_id: str, patterns) -> bool:
    """True when ``seed_id`` matches one of the ``NET.STA.LOC.CHA`` shell patterns."""
    return any(fnmatch.fnmatchcase(seed_id, p) for p in patterns)


def station_key(seed_id: str) -> str:
    """``NET.STA.LOC`` of a ``NET.STA.LOC.CHA`` id."""
    return seed_id.rsplit(".", 1)[0]


class Source:
    """Interface of a waveform source."""

    #: (file, reason) of input files that could not be read at planning (skipped).
    unreadable: list[tuple[str, str]] = []

    def stations(self, any_rate: bool = False) -> list[Station]:  # pragma: no cover - interface
        """The stations found; ``any_rate``: channels of one station may differ in rate (they are
        resampled), and the station's ``sampling_rate`` is then its highest."""
        raise NotImplementedError

    def read(self, station: Station, t0: UTCDateTime, t1: UTCDateTime) -> tuple[obspy.Stream, list[dict]]:
        """Traces of ``station`` covering ``[t0, t1]`` and the files read (path, size, mtime)."""
        raise NotImplementedError  # pragma: no cover - interface

    def input_records(self, station: Station, t0: UTCDateTime, t1: UTCDateTime) -> list[dict]:
        """The files (path, size, mtime) a read of ``station`` over ``[t0, t1]`` would touch now."""
        return [_file_record(p) for p in self._paths(station, t0, t1)]

    def _paths(self, station: Station, t0: UTCDateTime, t1: UTCDateTime) -> list[str]:
        raise NotImplementedError  # pragma: no cover - interface

    def spec(self, station: Station | None = None, t0: UTCDateTime | None = None,
             t1: UTCDateTime | None = None) -> dict:
        """A small picklable description from which :func:`make_source` rebuilds this source,
        restricted to what reading ``station`` over ``[t0, t1]`` needs when they are given."""
        raise NotImplementedError  # pragma: no cover - interface


def make_source(spec: dict) -> Source:
    """Rebuild a source from :meth:`Source.spec` (in a worker process)."""
    kind = spec["kind"]
    if kind == "files":
        return FileSource.from_spec(spec)
    if kind == "sds":
        return SDSSource(spec["root"], spec["select"])
    raise ValueError(f"unknown source kind {kind!r}")


def _file_record(path: str) -> dict:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime": st.st_mtime}


def nominal_rate(rate: float) -> float:
    """The nominal sampling rate (Hz) of a reported ``rate``: rounded to 3 decimals when that
    is the same rate (:func:`scatflow.grid.same_rate`); digitisers report 49.9999 Hz for 50 Hz."""
    rounded = round(float(rate), 3)
    if rounded > 0 and same_rate(rate, rounded):
        return rounded
    return float(rate)


def _group_stations(extents: list[Extent], where: str, any_rate: bool = False) -> list[Station]:
    by_station: dict[str, list[Extent]] = {}
    for e in extents:
        by_station.setdefault(station_key(e.channel), []).append(e)
    stations = []
    for key in sorted(by_station):
        exts = by_station[key]
        rates = {}
        for e in exts:
            rates.setdefault(e.channel, set()).add(e.sampling_rate)
        for cha, rs in rates.items():
            if len(rs) > 1 and not any_rate:
                raise InputError(f"{where}: channel {cha} has several sampling rates {sorted(rs)} Hz")
        distinct = set().union(*rates.values())
        if len(distinct) > 1 and not any_rate:
            detail = ", ".join(f"{c} {next(iter(r))} Hz" for c, r in sorted(rates.items()))
            raise InputError(f"{where}: channels of station {key} have different sampling rates ({detail})")
        stations.append(
            Station(
                key=key,
                channels=sorted(rates),
                sampling_rate=max(distinct),
                first_ns=min(e.start_ns for e in exts),
                last_ns=max(e.end_ns for e in exts),
            )
        )
    return stations


class FileSource(Source):
    """Waveform files given by globs; each file's headers are read once, at planning."""

    def __init__(self, patterns: list[str], select: list[str], extents: list[Extent] | None = None):
        self.patterns = list(patterns)
        self.select = list(select)
        self._extents = extents

    @classmethod
    def from_spec(cls, spec: dict) -> "FileSource":
        return cls(spec["patterns"], spec["select"], [Extent(**e) for e in spec["extents"]])

    def spec(self, station=None, t0=None, t1=None) -> dict:
        extents = self.extents()
        if station is not None:
            # A task carries only its own files' extents, not the whole input's.
            wanted = set(station.channels)
            extents = [e for e in extents if e.channel in wanted and e.start_ns <= t1.ns and e.end_ns >= t0.ns]
        return {
            "kind": "files",
            "patterns": self.patterns,
            "select": self.select,
            "extents": [dataclasses.asdict(e) for e in extents],
        }

    def files(self) -> list[str]:
        """The files the globs match, sorted; an InputError for a glob matching nothing."""
        out = []
        for pattern in self.patterns:
            hits = sorted(glob.glob(pattern, recursive=True))
            hits = [h for h in hits if os.path.isfile(h)]
            if not hits:
                raise InputError(f"input.paths: no file matches {pattern}")
            out.extend(hits)
        return sorted(dict.fromkeys(out))

    def extents(self) -> list[Extent]:
        if self._extents is None:
            extents, errors = [], []
            for path in self.files():
                try:
                    stream = _read(path, headonly=True)
                except InputError as exc:
                    # One damaged file among many is skipped with its reason (the run says so);
                    # alone, it is the error.
                    errors.append(exc)
                    continue
                for tr in stream:
                    if matches(tr.id, self.select):
                        extents.append(
                            Extent(
                                path=os.path.abspath(path),
                                channel=tr.id,
                                start_ns=tr.stats.starttime.ns,
                                end_ns=tr.stats.endtime.ns,
                                sampling_rate=nominal_rate(tr.stats.sampling_rate),
                            )
                        )
            if not extents and errors:
                raise errors[0]
            if not extents:
                raise InputError(f"input: no channel matches select={self.select} in {len(self.files())} file(s)")
            self._extents = extents
            self.unreadable = [(str(e).split(": ", 1)[0], str(e).split(": ", 1)[1]) for e in errors]
        return self._extents

    def stations(self, any_rate: bool = False) -> list[Station]:
        return _group_stations(self.extents(), "input.paths", any_rate)

    def _paths(self, station, t0, t1):
        wanted = set(station.channels)
        return sorted(
            {e.path for e in self.extents() if e.channel in wanted and e.start_ns <= t1.ns and e.end_ns >= t0.ns}
        )

    def read(self, station, t0, t1):
        wanted = set(station.channels)
        paths = self._paths(station, t0, t1)
        stream = obspy.Stream()
        for path in paths:
            st = _read(path, starttime=t0, endtime=t1)
            stream += obspy.Stream([tr for tr in st if tr.id in wanted])
        return stream, [_file_record(p) for p in paths]


class SDSSource(Source):
    """An SDS archive read through :class:`obspy.clients.filesystem.sds.Client`."""

    def __init__(self, root: str, select: list[str]):
        from obspy.clients.filesystem.sds import Client

        if not os.path.isdir(root):
            raise InputError(f"input.sds: {root} is not a directory")
        self.root = root
        self.select = list(select)
        self.client = Client(root)

    def spec(self, station=None, t0=None, t1=None) -> dict:
        return {"kind": "sds", "root": self.root, "select": self.select}

    def stations(self, any_rate: bool = False) -> list[Station]:
        ids = sorted(".".join(nslc) for nslc in self.client.get_all_nslc() if matches(".".join(nslc), self.select))
        if not ids:
            raise InputError(f"input.sds: no channel matches select={self.select} under {self.root}")
        extents = []
        for seed_id in ids:
            # One record's header per channel gives its sampling rate; no waveform is decoded.
            path = self._any_file(seed_id)
            for tr in _read(path, headonly=True):
                if tr.id == seed_id:
                    extents.append(Extent(path, seed_id, tr.stats.starttime.ns, tr.stats.endtime.ns,
                                          nominal_rate(tr.stats.sampling_rate)))
                    break
        stations = _group_stations(extents, "input.sds", any_rate)
        for s in stations:  # spans are decided by the config's start/end, not by one file
            s.first_ns = s.last_ns = None
        return stations

    def _any_file(self, seed_id: str) -> str:
        net, sta, loc, cha = seed_id.split(".")
        pattern = os.path.join(self.root, "*", net, sta, f"{cha}.D", f"{net}.{sta}.{loc}.{cha}.D.*")
        for path in sorted(glob.glob(pattern)):
            if os.path.getsize(path) > 0:
                return path
        raise InputError(f"input.sds: no non-empty file for {seed_id} under {self.root}")

    def _paths(self, station, t0, t1):
        paths = []
        for seed_id in station.channels:
            net, sta, loc, cha = seed_id.split(".")
            paths += [p for p in self.client._get_filenames(net, sta, loc, cha, t0, t1) if os.path.isfile(p)]
        return paths

    def read(self, station, t0, t1):
        stream = obspy.Stream()
        files = self.input_records(station, t0, t1)
        for seed_id in station.channels:
            net, sta, loc, cha = seed_id.split(".")
            with warnings.catch_warnings():
                # A truncated file only warns in ObsPy: make it an error, never a short trace.
                warnings.simplefilter("error", category=_mseed_warning())
                try:
                    # No merge: ObsPy's merge refuses traces of different rates (a station
                    # upgraded at midnight) and picks one side of a conflicting overlap.
                    stream += self.client.get_waveforms(net, sta, loc, cha, t0, t1, merge=None)
                except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad files
                    raise InputError(f"{seed_id}: cannot read SDS data for {t0}..{t1} ({_short(exc)})") from None
        return stream, files


def _mseed_warning():
    from obspy.io.mseed import InternalMSEEDWarning

    return InternalMSEEDWarning


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _read(path: str, **kwargs) -> obspy.Stream:
    """``obspy.read`` with every failure turned into one InputError line naming the file."""
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", category=_mseed_warning())
        try:
            stream = obspy.read(path, **kwargs)
        except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad files
            raise InputError(f"{path}: not a readable waveform file ({_short(exc)})") from None
    _check_records(path, stream)
    return stream


def _check_records(path: str, stream: obspy.Stream) -> None:
    """Refuse a miniSEED file whose size is not its records' total: a truncated last record
    is dropped by ObsPy without an error, which would silently shorten the data."""
    meta = [tr.stats.get("mseed") for tr in stream]
    if not meta or any(m is None for m in meta):
        return
    lengths = {m.get("record_length") for m in meta}
    size = meta[0].get("filesize")
    if len(lengths) != 1 or size is None or None in lengths:
        return
    (reclen,) = lengths
    # Reading a time window reports only the records of that window; the size must still be whole records.
    if size % reclen:
        raise InputError(
            f"{path}: truncated or damaged miniSEED ({size} bytes is not a whole number of {reclen}-byte records)"
        )


__all__ = ["InputError", "Station", "Source", "FileSource", "SDSSource", "make_source", "matches"]
