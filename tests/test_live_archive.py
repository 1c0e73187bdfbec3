"""A live archive processed night after night ends equal to one fresh run over the final archive.

Eventual equality: however a growing archive was processed (runs every night while files arrive
late, grow, are rewritten, go missing for days), once the files stop changing, one more
`scatflow run` leaves a store bitwise equal to a single fresh run over the final archive.
"""

import json
import shutil

import numpy as np
import obspy
import pytest
import zarr
from helpers import SMALL_LAYERS, assert_stores_bitwise_equal, write_config

from scatflow.cli import main
from scatflow.synthetic import write_archive

pytestmark = pytest.mark.slow  # real Dask clusters, one run per night

DAY = 86400
START = obspy.UTCDateTime("2015-12-04")
DOYS = [338 + i for i in range(5)]  # 2015-12-04 .. 2015-12-08
STATIONS = (("SV13", "", "HH"), ("SV20", "00", "BH"))
GROUPS = ("X9.SV13.", "X9.SV20.00")


def day_file(root, sta, loc, band, cha, doy):
    return root / f"2015/X9/{sta}/{band}{cha}.D/X9.{sta}.{loc}.{band}{cha}.D.2015.{doy}"


def final_archive(root):
    """Five days of two stations, with what a real archive holds once it stops changing:
    SV20 has no file on 2015-12-06 (a permanent outage, planted by write_archive), SV13's HHZ
    holds a 10-minute conflicting overlap on 2015-12-06, and SV20 is upgraded from 20 to 40 Hz
    on 2015-12-08."""
    write_archive(root, start=str(START.date), days=5)
    path = day_file(root, "SV13", "", "HH", "Z", 340)
    st = obspy.read(str(path))
    t = START + 2 * DAY + 12 * 3600
    clash = st[0].slice(t, t + 600 - 0.02).copy()
    clash.data = clash.data + 7  # same times, other samples
    (st + obspy.Stream([clash])).write(str(path), format="MSEED")
    for cha in "ZNE":
        path = day_file(root, "SV20", "00", "BH", cha, 342)
        tr = obspy.read(str(path))[0]
        tr.data = np.repeat(tr.data, 2)
        tr.stats.sampling_rate = 40.0
        tr.write(str(path), format="MSEED")


def deliver(final, live, sta, doy, until=None):
    """Copy one station-day from the final archive into the live one (cut at ``until`` if given)."""
    loc, band = dict((s, (l, b)) for s, l, b in STATIONS)[sta]
    for cha in "ZNE":
        src, dst = day_file(final, sta, loc, band, cha, doy), day_file(live, sta, loc, band, cha, doy)
        if not src.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if until is None:
            shutil.copyfile(src, dst)  # a new mtime, as a data centre's delivery has
        else:
            obspy.read(str(src), endtime=until - 0.001).write(str(dst), format="MSEED")


def night_config(path, live, store, days):
    return write_config(path, sds=live, select=("X9.SV13.*.*", "X9.SV20.*.*"), store=store,
                        start=str(START)[:19], end=str(START + days * DAY)[:19], window_s=40.0,
                        layers=SMALL_LAYERS, workers=2)


def run(cfg, capsys):
    code = main(["run", str(cfg), "--quiet"])
    return code, capsys.readouterr().out


def test_nightly_runs_end_equal_to_one_fresh_run(tmp_path, capsys):
    final, live = tmp_path / "final", tmp_path / "live"
    final_archive(final)
    store = tmp_path / "nightly.zarr"
    nights = [
        # (deliveries, days in the span, expected exit status)
        ([("SV13", 338), ("SV20", 338), ("SV13", 339, START + DAY + 13 * 3600)], 2, 0),  # day 2 half there
        ([("SV13", 339), ("SV20", 339), ("SV13", 340)], 3, 0),  # day 2 rewritten whole; SV20 outage starts
        ([("SV13", 341)], 4, 0),  # SV20 still out
        ([("SV20", 341)], 4, 0),  # SV20's day 4 comes late; its day 3 never will
        ([("SV13", 342), ("SV20", 342)], 5, 1),  # SV20 now at 40 Hz: its new blocks are refused
    ]
    outputs = []
    for i, (deliveries, days, status) in enumerate(nights):
        for d in deliveries:
            deliver(final, live, d[0], d[1], *(d[2:]))
        code, out = run(night_config(tmp_path / f"night{i}.toml", live, store, days), capsys)
        outputs.append(out)
        assert code == status, (i, out)
    assert "no data X9.SV20.00: blocks 4-7" in outputs[0]  # day 2 not delivered yet: an outage
    assert "no data X9.SV20.00: blocks 8-11" in outputs[1]
    assert "failed X9.SV20.00 block 16: X9.SV20.00: the sampling rate changes" in outputs[4]
    assert "[preprocess] sampling_rate" in outputs[4]

    # The archive stops changing: one more nightly run, and a fresh run over the same files.
    last = night_config(tmp_path / "last.toml", live, store, 5)
    assert run(last, capsys)[0] == 1
    fresh = night_config(tmp_path / "fresh.toml", live, tmp_path / "fresh.zarr", 5)
    assert run(fresh, capsys)[0] == 1

    assert_stores_bitwise_equal(store, tmp_path / "fresh.zarr", GROUPS)
    a = zarr.open_group(str(store), mode="r", use_consolidated=False)
    # What the nights went through is in the ledger too.
    sv13 = a["X9.SV13."]
    notes = [json.loads(str(n)) if str(n) else {} for n in sv13["block_notes"][:]]
    assert notes[10] == {"conflicting": 30000}  # 12:00-12:10 on day 3 (block 10), 50 Hz, one channel
    assert notes[9] == {"conflicting": 1000}  # its last window reaches 20 s into the clash
    sv20 = a["X9.SV20.00"]
    notes = [json.loads(str(n)) if str(n) else {} for n in sv20["block_notes"][:]]
    assert [b for b, n in enumerate(notes) if n.get("no_data")] == [8, 9, 10, 11]
    errors = [str(e) for e in sv20["block_error"][:]]
    assert [b for b, e in enumerate(errors) if e] == [16, 17, 18, 19]
    # The block whose last window straddles into the upgraded day is computed, that window not.
    assert int(sv20["block_done"][15]) == 1080 and "other_rates" in notes[15]
    # And `scatflow info` tells them apart.
    assert main(["info", str(store)]) == 0
    info = capsys.readouterr().out
    # Block 9's last window reaches 20 s into the clash, so it counts too (1000 samples).
    assert ("not recorded: samples where overlapping traces disagree (counted as gaps) in block(s) 9-10, "
            "up to 30000 in one block") in info
    assert "no data:    block(s) 8-11 (2015-12-06T00:00:00Z .. 2015-12-07T00:00:20Z)" in info
    assert "failed:     4 block(s)" in info and "rate change: block(s) 15 hold samples at another rate" in info


def test_a_channel_added_mid_archive_ends_equal_to_one_fresh_run(tmp_path, capsys):
    """SV13 has HHZ and HHN on days 1-2, HHE joins on day 3 and HHN stops after day 3; run night after
    night, the store takes HHE in (it used to refuse the station) and ends equal to one fresh run."""
    final, live = tmp_path / "final", tmp_path / "live"
    write_archive(final, start=str(START.date), days=4)
    for doy in DOYS[:2]:
        day_file(final, "SV13", "", "HH", "E", doy).unlink()
    day_file(final, "SV13", "", "HH", "N", DOYS[3]).unlink()
    store = tmp_path / "nightly.zarr"

    def config(name, days, store=store, first=0):
        return write_config(tmp_path / name, sds=live, select=("X9.SV13.*.*",), store=store,
                            start=str(START + first * DAY)[:19], end=str(START + days * DAY)[:19],
                            window_s=40.0, layers=SMALL_LAYERS, workers=2)

    for night, doy in enumerate(DOYS[:4]):
        deliver(final, live, "SV13", doy)
        code, out = run(config(f"night{night}.toml", night + 1), capsys)
        assert code == 0 and "refused" not in out, (night, out)
        if night == 2:
            # HHE is in the archive now: a run over the two days before it is not refused either.
            code, out = run(config("before.toml", 2), capsys)
            assert code == 0 and "refused" not in out and "done: 0 block(s)" in out, out
    # The last night ran over the final archive already: it equals one fresh run.
    assert run(config("fresh.toml", 4, store=tmp_path / "fresh.zarr"), capsys)[0] == 0
    assert_stores_bitwise_equal(store, tmp_path / "fresh.zarr", ["X9.SV13."])

    g = zarr.open_group(str(store), mode="r", use_consolidated=False)["X9.SV13."]
    assert [str(c) for c in g["channel"][:]] == ["X9.SV13..HHE", "X9.SV13..HHN", "X9.SV13..HHZ"]
    assert main(["info", str(store)]) == 0
    info = capsys.readouterr().out
    # HHE's first window is the one reaching 20 s into day 3; HHN's last reaches 20 s into day 4.
    assert "  recorded:   X9.SV13..HHE 2015-12-05T23:59:40Z .. 2015-12-08T00:00:00Z" in info
    assert "              X9.SV13..HHN 2015-12-04T00:00:00Z .. 2015-12-07T00:00:20Z" in info
