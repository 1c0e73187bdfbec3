"""Synthetic example data: a day stream, its miniSEED file and the SDS archive."""

from __future__ import annotations

import numpy as np
import pytest
from obspy import Stream, UTCDateTime, read
from obspy.clients.filesystem.sds import Client

from scatflow.synthetic import synthetic_day, write_archive, write_day

DAY = 86400
START = UTCDateTime("2015-12-04T00:00:00")


@pytest.fixture(scope="module")
def day():
    return synthetic_day()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_archive(tmp_path_factory.mktemp("sds"), start="2015-12-04", days=3, seed=0)


def _hours(trace, a, b):
    fs = trace.stats.sampling_rate
    return trace.data[int(a * 3600 * fs) : int(b * 3600 * fs)].astype(np.float64)


def _rms(x):
    return float(np.sqrt(np.mean((x - x.mean()) ** 2)))


# --------------------------------------------------------------------------
# synthetic_day
# --------------------------------------------------------------------------


def test_day_layout(day):
    assert [tr.id for tr in day] == ["X9.SV13..HHZ", "X9.SV13..HHN", "X9.SV13..HHE"]
    for tr in day:
        assert tr.stats.starttime == START
        assert tr.stats.sampling_rate == 50.0
        assert tr.stats.npts == 4_320_000
        assert tr.data.dtype == np.int32
        # Realistic counts: neither degenerate nor near int32 limits.
        assert 5 < _rms(_hours(tr, 2, 8)) < 1000
        assert np.abs(tr.data).max() < 2**24


def test_odd_span_and_codes():
    start = UTCDateTime("2015-12-04T10:00:00.123")
    st = synthetic_day(
        start=start, sampling_rate=100.0, network="XX", station="ABC", location="10",
        channels=("EHZ", "EH1"), duration_s=12.3456, seed=3,
    )
    assert [tr.id for tr in st] == ["XX.ABC.10.EHZ", "XX.ABC.10.EH1"]
    for tr in st:
        assert tr.stats.starttime == start
        assert tr.stats.npts == round(12.3456 * 100.0)
        assert tr.data.dtype == np.int32


def test_deterministic_per_seed():
    a = synthetic_day(start="2015-12-04T15:00:00", duration_s=1800, seed=7)
    b = synthetic_day(start="2015-12-04T15:00:00", duration_s=1800, seed=7)
    c = synthetic_day(start="2015-12-04T15:00:00", duration_s=1800, seed=8)
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x.data, y.data)
        assert not np.array_equal(x.data, z.data)


def test_overlapping_spans_agree(day):
    # The generator depends on absolute time only, not on the span asked for.
    part = synthetic_day(start=START + 11 * 3600 + 17.34, duration_s=1234.5)
    k = round((11 * 3600 + 17.34) * 50)
    for whole, piece in zip(day, part):
        np.testing.assert_array_equal(whole.data[k : k + piece.stats.npts], piece.data)


def test_components_differ(day):
    z, n, e = (tr.data for tr in day)
    assert not np.array_equal(z, n) and not np.array_equal(n, e)
    assert abs(np.corrcoef(n[:200_000], e[:200_000])[0, 1]) < 0.5


def test_tremor_louder_than_night(day):
    for tr in day:
        night, tremor = _rms(_hours(tr, 2, 8)), _rms(_hours(tr, 14, 18))
        assert tremor > 2.5 * night, tr.id
    # Tremor starts around 09:30: the hour before is still quiet.
    z = day[0]
    assert _rms(_hours(z, 8.5, 9.2)) < 1.5 * _rms(_hours(z, 2, 8))


def test_night_has_transients(day):
    # Events stand far above the quiet-night noise, on some components more than others.
    for tr in day:
        night = _hours(tr, 1, 9)
        peaks = np.abs(night - night.mean())
        assert peaks.max() > 10 * _rms(night), tr.id
        # ...and are short: fewer than 1 % of samples exceed 5 RMS.
        assert np.mean(peaks > 5 * _rms(night)) < 0.01, tr.id


def test_write_day_roundtrip(tmp_path):
    kwargs = dict(start="2015-12-04T12:00:00", duration_s=3600.0, seed=2)
    path = write_day(tmp_path / "sub" / "day.mseed", **kwargs)
    assert path == tmp_path / "sub" / "day.mseed" and path.is_file()
    back = read(str(path))
    ref = synthetic_day(**kwargs)
    assert len(back) == 3
    for tr in back:
        assert tr.stats.mseed.encoding == "STEIM2"
        assert tr.stats.mseed.record_length == 4096
        assert tr.data.dtype == np.int32
        want = ref.select(id=tr.id)[0]
        assert tr.stats.starttime == want.stats.starttime
        np.testing.assert_array_equal(tr.data, want.data)


# --------------------------------------------------------------------------
# write_archive
# --------------------------------------------------------------------------


def test_archive_description(archive):
    assert archive["start"] == "2015-12-04T00:00:00"
    assert archive["end"] == "2015-12-07T00:00:00"
    assert archive["days"] == ["2015-12-04", "2015-12-05", "2015-12-06"]
    assert archive["stations"] == {
        "X9.SV13.": {"sampling_rate": 50.0, "channels": [f"X9.SV13..HH{c}" for c in "ZNE"]},
        "X9.SV15.": {"sampling_rate": 50.0, "channels": [f"X9.SV15..HH{c}" for c in "ZNE"]},
        "X9.SV20.00": {"sampling_rate": 20.0, "channels": [f"X9.SV20.00.BH{c}" for c in "ZNE"]},
    }
    assert archive["gap"] == {
        "id": "X9.SV15..HHZ", "start": "2015-12-05T13:20:00", "end": "2015-12-05T13:25:00"
    }
    assert archive["missing"] == {"station": "X9.SV20.00", "day": "2015-12-05"}
    # 3 stations x 3 channels x 3 days, minus the missing station-day.
    assert len(archive["files"]) == 24
    assert "2015/X9/SV20/BHZ.D/X9.SV20.00.BHZ.D.2015.338" in archive["files"]


def test_archive_files_cut_at_midnight(archive):
    root = archive["root"]
    for rel in archive["files"]:
        st = read(f"{root}/{rel}")
        day0 = UTCDateTime(int(rel[:4]), julday=int(rel[-3:]))
        fs = st[0].stats.sampling_rate
        assert st[0].stats.starttime == day0
        assert st[-1].stats.endtime == day0 + DAY - 1 / fs
        for tr in st:
            assert tr.data.dtype == np.int32
            assert tr.stats.mseed.encoding == "STEIM2"
            assert tr.stats.mseed.record_length == 4096
        expected = len(st) == 2 if rel.endswith("X9.SV15..HHZ.D.2015.339") else len(st) == 1
        assert expected, rel


def test_sds_across_midnight_is_continuous(archive):
    client = Client(archive["root"])
    t0 = UTCDateTime("2015-12-05T00:00:00") - 1800
    got = client.get_waveforms("X9", "SV13", "", "HH?", t0, t0 + 3600 - 1 / 50)
    want = synthetic_day(start=t0, duration_s=3600, station="SV13")
    assert len(got) == 3
    for tr in want:
        (g,) = got.select(id=tr.id)
        assert g.stats.starttime == t0 and g.stats.npts == 180_000
        np.testing.assert_array_equal(g.data, tr.data)

    # The whole span of one channel reads back as the single continuous signal.
    (whole,) = client.get_waveforms("X9", "SV13", "", "HHZ", START, START + 3 * DAY - 1 / 50)
    ref = synthetic_day(start=START, duration_s=3 * DAY, channels=("HHZ",))
    assert whole.stats.npts == 3 * DAY * 50
    np.testing.assert_array_equal(whole.data, ref[0].data)


def test_sds_other_stations_match_generator(archive):
    client = Client(archive["root"])
    got = client.get_waveforms("X9", "SV20", "00", "BH?", START, START + DAY - 1 / 20)
    want = synthetic_day(
        start=START, sampling_rate=20.0, station="SV20", location="00", channels=("BHZ", "BHN", "BHE")
    )
    assert len(got) == 3
    for tr in want:
        (g,) = got.select(id=tr.id)
        assert g.stats.npts == DAY * 20
        np.testing.assert_array_equal(g.data, tr.data)

    t0 = UTCDateTime("2015-12-06T00:00:00") - 600
    got = client.get_waveforms("X9", "SV15", "", "HHN", t0, t0 + 1200 - 1 / 50)
    want = synthetic_day(start=t0, duration_s=1200, station="SV15", channels=("HHN",))
    assert len(got) == 1
    np.testing.assert_array_equal(got[0].data, want[0].data)
    # Stations share the scenario but not the noise.
    sv13 = synthetic_day(start=t0, duration_s=1200, station="SV13", channels=("HHN",))
    assert not np.array_equal(sv13[0].data, want[0].data)


def test_sds_missing_day(archive):
    client = Client(archive["root"])
    net, sta, loc = archive["missing"]["station"].split(".")
    day0 = UTCDateTime(archive["missing"]["day"])
    st = client.get_waveforms(net, sta, loc, "*", day0 + 60, day0 + DAY - 60)
    assert isinstance(st, Stream) and len(st) == 0
    # Its neighbours are there.
    assert len(client.get_waveforms(net, sta, loc, "*", day0 - DAY, day0 - 1)) == 3
    assert len(client.get_waveforms(net, sta, loc, "*", day0 + DAY, day0 + 2 * DAY - 1)) == 3


def test_sds_gap(archive):
    client = Client(archive["root"])
    gap = archive["gap"]
    net, sta, loc, cha = gap["id"].split(".")
    g0, g1 = UTCDateTime(gap["start"]), UTCDateTime(gap["end"])
    day0 = UTCDateTime(g0.date)
    st = client.get_waveforms(net, sta, loc, cha, day0, day0 + DAY - 1 / 50)
    assert len(st) == 2
    st.sort(["starttime"])
    assert st[0].stats.starttime == day0 and st[0].stats.endtime == g0 - 1 / 50
    assert st[1].stats.starttime == g1 and st[1].stats.endtime == day0 + DAY - 1 / 50
    assert st[0].stats.npts + st[1].stats.npts == (DAY - (g1 - g0)) * 50
    # The samples that are there are the continuous signal's.
    ref = synthetic_day(start=g0 - 60, duration_s=g1 - g0 + 120, station=sta, channels=(cha,))[0].data
    np.testing.assert_array_equal(st[0].data[-3000:], ref[:3000])
    np.testing.assert_array_equal(st[1].data[:3000], ref[-3000:])
    # Only that channel has the gap.
    other = client.get_waveforms(net, sta, loc, "HHE", day0, day0 + DAY - 1 / 50)
    assert len(other) == 1 and other[0].stats.npts == DAY * 50


def test_archive_tremor_louder_than_night(archive):
    client = Client(archive["root"])
    for seed_id in ("X9.SV13..HHZ", "X9.SV20.00.BHZ"):
        net, sta, loc, cha = seed_id.split(".")
        (tr,) = client.get_waveforms(net, sta, loc, cha, START, START + DAY - 0.01)
        assert _rms(_hours(tr, 14, 18)) > 2.5 * _rms(_hours(tr, 2, 8)), seed_id


def test_archive_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="midnight"):
        write_archive(tmp_path, start="2015-12-04T01:00:00", days=1)
    with pytest.raises(ValueError, match="days"):
        write_archive(tmp_path, days=0)
    with pytest.raises(ValueError, match="seed"):
        synthetic_day(duration_s=10, seed=-1)
    assert not any(tmp_path.iterdir())
