"""The SDS layout ``ROOT/YEAR/NET/STA/CHA.TYPE/NET.STA.LOC.CHA.TYPE.YEAR.DOY``, walked by directory.

Planning an SDS archive must cost what a run touches, not what the archive holds: these
helpers list only the directories asked for and build day-file names instead of globbing
them. Names follow ObsPy's SDS client (:mod:`obspy.clients.filesystem.sds`): codes are word
characters (a location code may be empty), and a day file of a time span is any of the days
``[t0 - border, t1 + border]`` (:func:`read_days`).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import stat

from .. import location
from ..errors import InputError
from .records import file_record

from obspy import UTCDateTime
from obspy.core.util.misc import BAND_CODE

_WORD = re.compile(r"\w*")
DAY_S = 86400


def subdirs(path: str) -> list[str]:
    """Names of the sub-directories of ``path``, sorted ([] when it does not exist).

    One ``os.scandir`` (directory entries carry their type: no ``stat`` per entry on
    local file systems and most network ones; one listing request for a URL)."""
    if location.is_url(path):
        return sorted(posixpath.basename(e["name"].rstrip("/")) for e in location.entries(path)
                      if e.get("type") == "directory")
    try:
        with os.scandir(path) as it:
            return sorted(e.name for e in it if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def listing(path: str) -> list[str]:
    """Names in directory ``path``, sorted ([] when it does not exist): one ``os.listdir``."""
    if location.is_url(path):
        return location.listdir(path)
    try:
        return sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []


def check_root(root) -> None:
    """Refuse an SDS root that is not a directory (an object-store prefix holding nothing, or a
    server that does not answer): one InputError line naming ``input.sds``."""
    if not location.is_url(root):
        if not os.path.isdir(root):
            raise InputError(f"input.sds: {root} is not a directory")
        return
    try:
        found = bool(location.listdir(root))
    except Exception as exc:  # noqa: BLE001 - the server does not answer (after s3fs's retries)
        raise InputError(f"input.sds: {location.unreachable(root, exc)}") from None
    if not found:
        raise InputError(f"input.sds: {root} holds no objects")


def client_defaults() -> tuple[str, float, int]:
    """ObsPy's SDS client's day type and file border (seconds, samples) of its day-file rule,
    from its signature: the client itself wants a local root."""
    import inspect

    from obspy.clients.filesystem.sds import Client

    d = {k: v.default for k, v in inspect.signature(Client.__init__).parameters.items()}
    return d["sds_type"], d["fileborder_seconds"], d["fileborder_samples"]


def year_dirs(root: str) -> list[int]:
    """The archive's year directories (names of digits), ascending."""
    return sorted(int(name) for name in subdirs(root) if name.isdigit())


def level_patterns(select: list[str]) -> list[tuple[str, ...] | None]:
    """Each ``NET.STA.LOC.CHA`` pattern of ``select`` split into its four codes, or None where
    it cannot be split safely (not four parts, or ``?``/``[`` that could match a dot): such a
    pattern prunes no directory, and the full id is matched at the end anyway."""
    out = []
    for p in select:
        parts = tuple(p.split("."))
        out.append(parts if len(parts) == 4 and not any(c in p for c in "?[") else None)
    return out


def alive(patterns: list, level: int, code: str) -> list:
    """The ``patterns`` (from :func:`level_patterns`) that code ``code`` at ``level``
    (0 NET, 1 STA, 2 LOC, 3 CHA) can still match."""
    return [p for p in patterns if p is None or fnmatch.fnmatchcase(code, p[level])]


def day_file_location(name: str, net: str, sta: str, cha: str, sds_type: str, year: int) -> tuple[str, int] | None:
    """``(location, day of year)`` of the day file ``name`` in ``YEAR/NET/STA/CHA.TYPE``, or None
    when ``name`` is not one of that directory's day files."""
    parts = name.split(".")
    if len(parts) != 7:
        return None
    n, s, loc, c, t, y, doy = parts
    if (n, s, c, t, y) != (net, sta, cha, sds_type, str(year)) or not _WORD.fullmatch(loc) or not doy.isdigit():
        return None
    return loc, int(doy)


def day_file_name(seed_id: str, sds_type: str, year: int, doy: int) -> str:
    """The path of ``seed_id``'s day file ``year``/``doy`` relative to the archive's root, as
    ObsPy's SDS client names it,
    ``YEAR/NET/STA/CHA.TYPE/NET.STA.LOC.CHA.TYPE.YEAR.DOY`` (``/`` separators): what its
    records name (:mod:`scatflow.inputs.records`)."""
    net, sta, loc, cha = seed_id.split(".")
    return f"{year}/{net}/{sta}/{cha}.{sds_type}/{net}.{sta}.{loc}.{cha}.{sds_type}.{year}.{doy:03d}"


def read_days(channel: str, t0: UTCDateTime, t1: UTCDateTime, border_s: float,
              border_samples: int) -> list[tuple[int, int]]:
    """The (year, day of year) whose day files a read of ``channel`` over ``[t0, t1]`` opens,
    sorted: the days of ``[t0 - b, t1 + b]``, ``b`` the larger of ``border_s`` seconds and
    ``border_samples`` samples at the channel's nominal band rate (ObsPy's
    ``Client._get_filenames``, whose rule this is: records crossing midnight sit in the
    day file before)."""
    border = max(border_samples / BAND_CODE.get(channel[:1], 20.0), border_s)
    t, t_max = t0 - border, t1 + border
    days = set()
    while t < t_max:
        days.add((t.year, t.julday))
        t += DAY_S
    days.add((t_max.year, t_max.julday))
    return sorted(days)


class Layout:
    """One SDS archive as planning and reading walk it: the channel directories of the span's
    years, their listings (each listed once), and the day files a read opens.

    Parameters
    ----------
    root : str
    select : list of str
        ``NET.STA.LOC.CHA`` shell patterns.
    start, end : UTCDateTime or None
        The span planned: the years listed are those from the day before ``start`` to the
        day after ``end`` (all of them on a side left None).
    sds_type : str
        The SDS data type letter (``D``).
    border_s, border_samples : float, int
        The file border of :func:`read_days`.
    """

    def __init__(self, root: str, select: list[str], start: UTCDateTime | None, end: UTCDateTime | None,
                 sds_type: str, border_s: float, border_samples: int):
        self.root, self.select, self.start, self.end = root, list(select), start, end
        self.sds_type, self.border_s, self.border_samples = sds_type, border_s, border_samples
        self._listings: dict[str, list[str]] = {}
        self._years: list[int] | None = None

    def years(self) -> list[int]:
        """The archive's year directories (one ``scandir`` of the root, once)."""
        if self._years is None:
            self._years = year_dirs(self.root)
        return self._years

    def span_years(self) -> list[int]:
        """The year directories that may hold a day file of the span."""
        lo = None if self.start is None else (self.start - DAY_S).year
        hi = None if self.end is None else (self.end + DAY_S).year
        return [y for y in self.years() if (lo is None or y >= lo) and (hi is None or y <= hi)]

    def channel_dir(self, year: int, net: str, sta: str, cha: str) -> str:
        return location.join(self.root, str(year), net, sta, f"{cha}.{self.sds_type}")

    def channel_dirs(self, years: list[int]):
        """``(year, NET, STA, CHA)`` of the channel directories in ``years`` that ``select`` may
        match: one ``scandir`` per year, network and station, pruned code by code."""
        pats, suffix = level_patterns(self.select), f".{self.sds_type}"
        for year in years:
            ydir = location.join(self.root, str(year))
            for net in subdirs(ydir):
                p_net = alive(pats, 0, net) if _WORD.fullmatch(net) else []
                for sta in subdirs(location.join(ydir, net)) if p_net else ():
                    p_sta = alive(p_net, 1, sta) if _WORD.fullmatch(sta) else []
                    for name in subdirs(location.join(ydir, net, sta)) if p_sta else ():
                        cha = name[: -len(suffix)]
                        if name.endswith(suffix) and _WORD.fullmatch(cha) and cha and alive(p_sta, 3, cha):
                            yield year, net, sta, cha

    def files(self, year: int, net: str, sta: str, cha: str) -> dict[str, list[tuple[int, int, str]]]:
        """Per SEED id, the ``(year, doy, path)`` of its day files in one channel directory
        (one ``listdir``, once per planning)."""
        path = self.channel_dir(year, net, sta, cha)
        if path not in self._listings:
            self._listings[path] = listing(path)
        out: dict[str, list] = {}
        for name in self._listings[path]:
            parsed = day_file_location(name, net, sta, cha, self.sds_type, year)
            if parsed is not None:
                out.setdefault(f"{net}.{sta}.{parsed[0]}.{cha}", []).append((year, parsed[1], location.join(path, name)))
        return out

    def span_files(self) -> dict[str, list[tuple[int, int, str]]]:
        """Per SEED id that ``select`` matches, its day files in the span's years, in time order."""
        found: dict[str, list] = {}
        for year, net, sta, cha in self.channel_dirs(self.span_years()):
            for seed_id, files in self.files(year, net, sta, cha).items():
                if any(fnmatch.fnmatchcase(seed_id, p) for p in self.select):
                    found.setdefault(seed_id, []).extend(files)
        return {k: sorted(v) for k, v in found.items()}

    def candidates(self, seed_id: str, span_files: list[tuple[int, int, str]]):
        """``(year, doy, path)`` of ``seed_id``'s day files in the order planning tries their
        headers: from the day before the span's start on, then those of the years after the
        span's, then every earlier one (the other years listed only when reached)."""
        net, sta, _, cha = seed_id.split(".")
        day = None if self.start is None else self.start - DAY_S
        first = (0, 0) if day is None else (day.year, day.julday)
        yield from (f for f in span_files if f[:2] >= first)
        span = set(self.span_years())
        last = max(span | {f[0] for f in span_files})
        for year in [y for y in self.years() if y > last]:
            yield from self.files(year, net, sta, cha).get(seed_id, [])
        earlier = [f for y in self.years() if y < last and y not in span
                   for f in self.files(y, net, sta, cha).get(seed_id, [])]
        yield from sorted(earlier + [f for f in span_files if f[:2] < first])

    def records(self, seed_id: str, t0: UTCDateTime, t1: UTCDateTime) -> list[tuple[str, dict]]:
        """``(path, record)`` of the day files a read of ``seed_id`` over ``[t0, t1]`` opens, by
        path (record: path relative to the root, size, mtime): their names built as ObsPy's
        client builds them, one ``stat`` each, no listing."""
        out = []
        for year, doy in read_days(seed_id.split(".")[3], t0, t1, self.border_s, self.border_samples):
            name = day_file_name(seed_id, self.sds_type, year, doy)
            path = location.join(self.root, *name.split("/"))
            if location.is_url(path):
                try:  # one HEAD: size and ETag
                    out.append((path, file_record(path, name)))
                except FileNotFoundError:
                    pass
                continue
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((path, {"path": name, "size": st.st_size, "mtime": st.st_mtime}))
        return sorted(out, key=lambda pr: pr[0])
