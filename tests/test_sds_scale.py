"""Planning an SDS archive costs what the span touches, not what the archive holds (issue 21): the
directories and day files a nightly plan lists or stats do not grow with the archive's past."""

import os

import numpy as np
import obspy
import pytest
from helpers import plan_and_run_in_process, write_config, write_sds_traces

from scatflow.config import load_config
from scatflow.inputs.sources import SDSSource
from scatflow.store.writer import Store
from scatflow.workflow.plan import make_plan

SEED_IDS = ("XX.AAA.00.LHZ", "XX.AAA.00.LHN", "XX.BBB..LHZ")
LAST = obspy.UTCDateTime("2016-01-04")  # the night planned: its archive's last day


def write_days(root, first, last, ids=SEED_IDS, rate=1.0, seconds=100):
    """A short trace per channel and day, from day ``first`` to day ``last`` included."""
    traces, day = [], obspy.UTCDateTime(first)
    while day <= obspy.UTCDateTime(last):
        for seed_id in ids:
            net, sta, loc, cha = seed_id.split(".")
            traces.append(obspy.Trace(np.arange(int(seconds * rate), dtype=np.int32),
                                      {"network": net, "station": sta, "location": loc, "channel": cha,
                                       "sampling_rate": rate, "starttime": day}))
        day += 86400
    return write_sds_traces(root, traces)


class FileSystemCalls:
    """Counts what the code under test asks the file system: directory entries listed (by
    ``os.scandir``/``os.listdir``, glob's included) and ``os.stat``/``os.lstat`` calls."""

    def __init__(self, monkeypatch):
        self.listed = self.stats = 0
        scandir, listdir, stat, lstat = os.scandir, os.listdir, os.stat, os.lstat
        calls = self

        class Entries:
            def __init__(self, it):
                self.it = it

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.it.close()

            def __iter__(self):
                for entry in self.it:
                    calls.listed += 1
                    yield entry

            def close(self):
                self.it.close()

        def counted_listdir(*a, **k):
            names = listdir(*a, **k)
            self.listed += len(names)
            return names

        def counted(fn):
            def call(*a, **k):
                self.stats += 1
                return fn(*a, **k)
            return call

        monkeypatch.setattr(os, "scandir", lambda *a, **k: Entries(scandir(*a, **k)))
        monkeypatch.setattr(os, "listdir", counted_listdir)
        monkeypatch.setattr(os, "stat", counted(stat))
        monkeypatch.setattr(os, "lstat", counted(lstat))


def plan_last_day(root, monkeypatch):
    """What planning the archive's last day costs: (entries listed, stats) of finding the
    stations and the files of that day's reads, and those files."""
    source = SDSSource(str(root), ["XX.*.*.*"], str(LAST), str(LAST + 86400))
    with monkeypatch.context() as m:
        calls = FileSystemCalls(m)
        stations = source.stations()
        records = [r for st in stations for r in source.input_records(st, LAST, LAST + 86400 - 1)]
    return calls.listed, calls.stats, stations, records


def test_planning_the_last_night_does_not_grow_with_the_archive(tmp_path, monkeypatch):
    """5 days of archive or 40 (the days added are in the year before the night's): planning
    the last day lists and stats exactly as much, and finds the same stations, rates and files."""
    small, large = tmp_path / "small", tmp_path / "large"
    write_days(small, LAST - 4 * 86400, LAST)
    write_days(large, LAST - 39 * 86400, LAST)
    assert len(list(large.rglob("*.LH?.D.*"))) == 40 * len(SEED_IDS)
    plan_last_day(small, monkeypatch)  # once before: ObsPy's first read stats its plugins
    listed_small, stats_small, stations_small, records_small = plan_last_day(small, monkeypatch)
    listed_large, stats_large, stations_large, records_large = plan_last_day(large, monkeypatch)
    assert (listed_large, stats_large) == (listed_small, stats_small), (
        f"5 days: {listed_small} entries listed, {stats_small} stats; "
        f"40 days: {listed_large} entries listed, {stats_large} stats")
    assert [(s.key, s.channels, s.sampling_rate) for s in stations_large] == [
        ("XX.AAA.00", ["XX.AAA.00.LHN", "XX.AAA.00.LHZ"], 1.0), ("XX.BBB.", ["XX.BBB..LHZ"], 1.0)]
    assert [(s.key, s.channels) for s in stations_small] == [(s.key, s.channels) for s in stations_large]
    # The last day's files and the day before (ObsPy's SDS file border: records crossing midnight).
    names = sorted(os.path.basename(r["path"]) for r in records_large)
    assert names == sorted(f"{i}.D.2016.{doy:03d}" for i in SEED_IDS for doy in (3, 4))
    assert [os.path.basename(r["path"]) for r in records_small] == [os.path.basename(r["path"])
                                                                   for r in records_large]


@pytest.mark.parametrize("span", [("2015-12-31T23:59:30", "2016-01-01T00:10:00"),
                                  ("2015-12-30T12:00:00", "2016-01-02T12:00:00"),
                                  ("2016-01-03T00:00:00", "2016-01-03T23:59:59")])
def test_the_files_of_a_read_are_those_obspys_sds_client_opens(tmp_path, span):
    """Day-file names built, not globbed: the same files as ObsPy's client finds, so the files
    recorded for a block (and so the ledger) do not change."""
    from obspy.clients.filesystem.sds import Client

    root = write_days(tmp_path / "archive", "2015-12-29", "2016-01-04", ids=SEED_IDS + ("XX.CCC..BHZ",))
    t0, t1 = (obspy.UTCDateTime(t) for t in span)
    source, client = SDSSource(str(root), ["*"]), Client(str(root))
    for seed_id in SEED_IDS + ("XX.CCC..BHZ",):
        expected = sorted(p for p in client._get_filenames(*seed_id.split("."), t0, t1) if os.path.isfile(p))
        records = source.input_records(type("S", (), {"channels": [seed_id]}), t0, t1)
        assert [r["file"] for r in records] == expected and records, seed_id
        # Records name a file relative to the archive's root.
        assert [r["path"] for r in records] == [os.path.relpath(p, root) for p in expected], seed_id


def test_a_station_planned_after_a_rate_change_keeps_its_groups_rate(tmp_path):
    """Planning reads the header at the span's start: after an upgrade from 1 to 2 Hz, a run over
    the new days still lays its windows out at the group's 1 Hz (their blocks then fail, naming
    the change), never at another rate under the group's frequencies."""
    root = tmp_path / "archive"
    write_days(root, "2016-01-01", "2016-01-02", ids=("XX.AAA..LHZ",), seconds=86400)
    write_days(root, "2016-01-03", "2016-01-04", ids=("XX.AAA..LHZ",), rate=2.0, seconds=86400)
    run = {"sds": root, "store": tmp_path / "out.zarr", "window_s": 200.0, "block_s": 43200,
           "layers": [{"octaves": 3, "resolution": 2, "quality": 2}]}
    first = load_config(write_config(tmp_path / "a.toml", start="2016-01-01", end="2016-01-02", **run))
    plan_and_run_in_process(first)
    later = load_config(write_config(tmp_path / "b.toml", start="2016-01-04", end="2016-01-05", **run))
    assert SDSSource(str(root), ["*"], "2016-01-04", "2016-01-05").stations()[0].sampling_rate == 2.0
    (sp,) = make_plan(later, Store(later.output["store"])).stations
    assert sp.station.sampling_rate == 1.0 and sp.grid.sampling_rate == 1.0
