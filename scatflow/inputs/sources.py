"""Waveform sources: what stations and channels exist, and reading a time span of one station.

Two kinds, with one small interface (:class:`Source`): plain file globs
(:class:`FileSource`, headers read once at planning time) and SDS archives
(:class:`SDSSource`, planned from file names and one header per channel;
day files read as ObsPy's SDS client does, each checked). Workers call :meth:`Source.read` for exactly the span a block
needs; it returns the ObsPy stream and the files it touched (provenance).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os

import obspy
from obspy import UTCDateTime

from ..errors import InputError
from .grid import same_rate
from .. import location
from .records import file_record, glob_base, relative_to
from .sdslayout import Layout, check_root, client_defaults
from .wavefile import bad_files, file_digest, mislabelled, read_checked




@dataclasses.dataclass(frozen=True)
class Extent:
    """One stretch of one channel in one file (from headers)."""

    path: str
    channel: str
    start_ns: int  # first sample, ns since 1970
    end_ns: int  # last sample, ns since 1970
    sampling_rate: float
    rel: str = ""  # path relative to the archive's root (its glob's base): what a record names


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

    #: (file or station, reason) of what could not be planned because of unreadable input (refused).
    unreadable: list[tuple[str, str]] = []
    #: (channel, reason) of what planning noticed about the input without refusing anything.
    notes: list[tuple[str, str]] = []

    def stations(self, any_rate: bool = False) -> list[Station]:  # pragma: no cover - interface
        """The stations found; ``any_rate``: channels of one station may differ in rate (they are
        resampled), and the station's ``sampling_rate`` is then its highest."""
        raise NotImplementedError

    def read(self, station: Station, t0: UTCDateTime, t1: UTCDateTime) -> tuple[obspy.Stream, list[dict]]:
        """Traces of ``station`` covering ``[t0, t1]`` and the records of the files read (path
        relative to the archive's root, size, mtime, blake2b)."""
        raise NotImplementedError  # pragma: no cover - interface

    def input_records(self, station: Station, t0: UTCDateTime, t1: UTCDateTime) -> list[dict]:
        """The records (:mod:`scatflow.inputs.records`: path relative to the archive's root, size,
        mtime) of the files a read of ``station`` over ``[t0, t1]`` would touch now, each with
        ``file``, where it is now (for planning: never stored)."""
        return [dict(file_record(p, rel), file=p) for p, rel in self._paths(station, t0, t1)]

    def _paths(self, station: Station, t0: UTCDateTime, t1: UTCDateTime) -> list[tuple[str, str]]:
        """(path now, path relative to the archive's root) of the files a read would open."""
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


def _read_record(path: str, record: dict) -> dict:
    """The record of a file a worker has read: ``record`` and the hashes of its bytes (a few ms
    a day file, with the file in the page cache after the read; an object's bytes are kept from
    its read): ``blake2b``, and ``md5``, which an object store's ETag of the same bytes states
    (:func:`scatflow.store.ledger.same_content`)."""
    blake2b, md5 = file_digest(path, md5=True)
    return dict(record, blake2b=blake2b, md5=md5)


def nominal_rate(rate: float) -> float:
    """The nominal sampling rate (Hz) of a reported ``rate``: rounded to 3 decimals when that
    is the same rate (:func:`scatflow.inputs.grid.same_rate`); digitisers report 49.9999 Hz for 50 Hz."""
    rounded = round(float(rate), 3)
    if rounded > 0 and same_rate(rate, rounded):
        return rounded
    return float(rate)


def _group_stations(extents: list[Extent], any_rate: bool = False) -> tuple[list[Station], list[tuple[str, str]]]:
    """Stations of the extents, and the stations refused (key, reason): without resampling
    (``any_rate`` False) a station whose channels differ in rate, or a channel with several
    rates, is refused alone; the other stations run."""
    by_station: dict[str, list[Extent]] = {}
    for e in extents:
        by_station.setdefault(station_key(e.channel), []).append(e)
    stations, refused = [], []
    for key in sorted(by_station):
        exts = by_station[key]
        rates = {}
        for e in exts:
            rates.setdefault(e.channel, set()).add(e.sampling_rate)
        distinct = set().union(*rates.values())
        if len(distinct) > 1 and not any_rate:
            detail = ", ".join(f"{c} {'/'.join(f'{r:g}' for r in sorted(rs))} Hz" for c, rs in sorted(rates.items()))
            refused.append((key, f"its channels have different sampling rates ({detail}): resample every "
                                 "channel with [preprocess] sampling_rate, or select one rate"))
            continue
        stations.append(
            Station(
                key=key,
                channels=sorted(rates),
                sampling_rate=max(distinct),
                first_ns=min(e.start_ns for e in exts),
                last_ns=max(e.end_ns for e in exts),
            )
        )
    return stations, refused


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

    def files(self) -> dict[str, str]:
        """The files the globs match (absolute path -> path relative to the base of the first
        glob matching it: :func:`scatflow.inputs.records.glob_base`), sorted; an InputError for
        a glob matching nothing."""
        out: dict[str, str] = {}
        for pattern in self.patterns:
            if location.is_url(pattern):
                hits = location.glob(pattern)
            else:
                hits = sorted(glob.glob(pattern, recursive=True))
                hits = [os.path.abspath(h) for h in hits if os.path.isfile(h)]
            if not hits:
                raise InputError(f"input.paths: no file matches {pattern}")
            base = glob_base(pattern)
            for h in hits:
                out.setdefault(h, relative_to(h, base))
        return dict(sorted(out.items()))

    def extents(self) -> list[Extent]:
        if self._extents is None:
            extents, errors = [], []
            for path, rel in self.files().items():
                try:
                    stream = read_checked(path, headonly=True)
                except InputError as exc:
                    # One damaged file among many is skipped with its reason (the run says so);
                    # alone, it is the error.
                    errors.append(exc)
                    continue
                for tr in stream:
                    if matches(tr.id, self.select):
                        extents.append(
                            Extent(
                                path=path,
                                channel=tr.id,
                                start_ns=tr.stats.starttime.ns,
                                end_ns=tr.stats.endtime.ns,
                                sampling_rate=nominal_rate(tr.stats.sampling_rate),
                                rel=rel,
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
        stations, refused = _group_stations(self.extents(), any_rate)
        self.unreadable = [u for u in self.unreadable if u not in refused] + refused
        return stations

    def _paths(self, station, t0, t1):
        wanted = set(station.channels)
        return sorted(
            {(e.path, e.rel) for e in self.extents()
             if e.channel in wanted and e.start_ns <= t1.ns and e.end_ns >= t0.ns}
        )

    def read(self, station, t0, t1):
        wanted = set(station.channels)
        paths = self._paths(station, t0, t1)
        stream = obspy.Stream()
        for path, _ in paths:
            st = read_checked(path, starttime=t0, endtime=t1)
            stream += obspy.Stream([tr for tr in st if tr.id in wanted])
        return stream, [_read_record(p, file_record(p, rel)) for p, rel in paths]


class SDSSource(Source):
    """An SDS archive ``ROOT/YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY``, planned from its
    directories, the names of its day files and one header per channel; day files read as
    ObsPy's SDS client reads them, each checked.

    Planning costs what the span touches, not what the archive holds. With ``Y`` the year
    directories from the day before ``start`` to the day after ``end`` (every year when
    ``start`` is None; every year from ``start`` on when ``end`` is None):

    - :meth:`stations`: one ``scandir`` of ``ROOT``, then per year of ``Y`` one of ``YEAR``,
      one per network and one per station (directories only, pruned by ``select`` code by
      code), and one ``listdir`` per channel directory (the location code is only in the file
      names); then one header read per channel, its first day file from the day before
      ``start`` on (later files, then earlier ones, only when those are unreadable).
    - :meth:`input_records` and :meth:`read`: one ``stat`` per channel and day of
      ``[t0 - border, t1 + border]`` (the day-file names are built, as the client builds them).

    Parameters
    ----------
    root : str
        The archive's root directory.
    select : list of str
        ``NET.STA.LOC.CHA`` shell patterns.
    start, end : str or UTCDateTime, optional
        The span planned (``input.start``/``input.end``): bounds the years listed.
    """

    def __init__(self, root: str, select: list[str], start=None, end=None):
        root = location.as_location(root)
        check_root(root)
        self.root = root
        self.select = list(select)
        self.start = None if start is None else UTCDateTime(start)
        self.end = None if end is None else UTCDateTime(end)
        sds_type, border_s, border_samples = client_defaults()
        self.layout = Layout(root, self.select, self.start, self.end, sds_type, border_s, border_samples)

    def spec(self, station=None, t0=None, t1=None) -> dict:
        return {"kind": "sds", "root": self.root, "select": self.select}

    def stations(self, any_rate: bool = False) -> list[Station]:
        """The stations of the archive's channels in the span's years, from one readable
        header per channel.

        A channel's files are tried in time order from the span's start until one holds a
        record of that channel (then the later files, then the earlier ones): an empty,
        damaged or mislabelled file never stops the planning. A channel without any such
        file joins its station at the station's rate (its files give no samples, or fail the
        blocks that read them) and is noted in :attr:`notes`; a station none of whose channels
        has one is refused in :attr:`unreadable`, with the files and reasons.
        """
        files = self.layout.span_files()
        ids = sorted(files)
        if not ids:
            raise InputError(f"input.sds: no channel matches select={self.select} under {self.root}")
        extents, unrated = [], {}
        for seed_id in ids:
            extent, bad = self._first_header(seed_id, files[seed_id])
            if extent is None:
                unrated[seed_id] = bad
            else:
                extents.append(extent)
        stations, refused = _group_stations(extents, any_rate)
        by_key = {s.key: s for s in stations}
        self.unreadable, self.notes = list(refused), []
        for key in sorted({station_key(c) for c in unrated}):
            channels = [c for c in unrated if station_key(c) == key]
            why = "; ".join(f"{c}: {bad_files(unrated[c])}" for c in channels)
            if key in dict(refused):
                continue  # refused already, for its rates
            if key not in by_key:
                self.unreadable.append((key, f"no channel has a readable file of its own ({why})"))
                continue
            st = by_key[key]
            st.channels = sorted(st.channels + channels)
            self.notes += [(c, f"no readable file of its own ({bad_files(unrated[c])}): taken at the station's "
                               f"{st.sampling_rate:g} Hz, not recorded where its files hold no data")
                           for c in channels]
        for s in stations:  # spans are decided by the config's start/end, not by one file
            s.first_ns = s.last_ns = None
        return stations

    def _first_header(self, seed_id: str, span_files) -> tuple[Extent | None, list[tuple[str, str]]]:
        """The first record header of ``seed_id`` in its files (only its rate is needed), and
        the (file, reason) of the files before it that could not give one."""
        bad = []
        for _, _, path in self.layout.candidates(seed_id, span_files):
            try:
                stream = read_checked(path, format="MSEED", headonly=True)
            except InputError as exc:
                text = str(exc)
                bad.append((path, text[len(path) + 2:] if text.startswith(f"{path}: ") else text))
                continue
            for tr in stream:
                if tr.id == seed_id:
                    return Extent(path, seed_id, tr.stats.starttime.ns, tr.stats.endtime.ns,
                                  nominal_rate(tr.stats.sampling_rate)), bad
            bad.append((path, mislabelled(stream, seed_id)))
        return None, bad

    def input_records(self, station, t0, t1):
        return [dict(r, file=p) for seed_id in station.channels for p, r in self.layout.records(seed_id, t0, t1)]

    def read(self, station, t0, t1):
        """As ObsPy's SDS client (``get_waveforms(..., merge=None)``), file by file, with every
        file checked: an empty file holds no data; a damaged, truncated or mislabelled one (records
        of another SEED id than its path's, which the client would drop silently, making it look
        like an outage) raises an InputError naming it, failing only the blocks that read it."""
        files = []
        stream = obspy.Stream()
        for seed_id in station.channels:
            for path, record in self.layout.records(seed_id, t0, t1):
                files.append((path, record))
                if record["size"] == 0:
                    continue  # a ring-buffer archiver's placeholder: no data, as for ObsPy's client
                part = read_checked(path, format="MSEED", starttime=t0, endtime=t1)
                if any(tr.id != seed_id for tr in part):
                    raise InputError(f"{path}: {mislabelled(part, seed_id)}")
                stream += part
        # No merge: ObsPy's merge refuses traces of different rates (a station upgraded at
        # midnight) and picks one side of a conflicting overlap.
        stream.trim(t0, t1)
        return stream, [_read_record(p, r) for p, r in files]


__all__ = ["InputError", "Station", "Source", "FileSource", "SDSSource", "make_source", "matches"]
