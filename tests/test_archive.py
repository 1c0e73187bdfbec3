"""Archive scale on a synthetic SDS archive: split invariance, resume, growth, failures, mixed rates."""

import json
import shutil

import numpy as np
import obspy
import pytest
import xarray as xr
import zarr
from helpers import SMALL_LAYERS, assert_same_store, block_sizes, load_group, n_windows, windows_per_block, write_config
from obspy.clients.filesystem.sds import Client

import scatflow
from scatflow.cli import main

pytestmark = pytest.mark.slow  # every test runs scatflow on a local Dask cluster

BOTH = ("X9.SV13.*.*", "X9.SV20.*.*")
SV13 = ("X9.SV13.*.*",)
HOUR = 3600.0
WINDOW_S, HOP_S = 40.0, 20.0  # overlap 0.5
PER_BLOCK = windows_per_block(HOUR, HOP_S)  # block_s = 3600: 180 windows a block
RUN = {"window_s": WINDOW_S, "layers": SMALL_LAYERS, "block_s": int(HOUR), "workers": 2}


@pytest.fixture
def archive(sds_archive):
    return sds_archive


def test_split_invariance_and_mixed_rates(archive, tmp_path, capsys):
    root, info = archive
    one = write_config(tmp_path / "one.toml", sds=root, select=BOTH, store="one.zarr",
                       start="2015-12-04T22:00:00", end="2015-12-05T02:00:00", **RUN)
    # SV20 has no data on 2015-12-05: an outage, not a failure (exit 0); its blocks after midnight
    # are reported per station with their time span, and are retried by later runs.
    assert main(["run", str(one), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "no data X9.SV20.00: blocks 2-3 (2015-12-05T00:00:00.000000Z .. 2015-12-05T02:00:00.000000Z)" in out
    assert "failed: 0" in out
    first = write_config(tmp_path / "a.toml", sds=root, select=BOTH, store="split.zarr",
                         start="2015-12-04T22:00:00", end="2015-12-05T00:00:00", **RUN)
    second = write_config(tmp_path / "b.toml", sds=root, select=BOTH, store="split.zarr",
                          start="2015-12-05T00:00:00", end="2015-12-05T02:00:00", **RUN)
    assert main(["run", str(first), "--quiet"]) == 0
    assert main(["run", str(second), "--quiet"]) == 0
    capsys.readouterr()

    four_hours = n_windows(4 * HOUR, WINDOW_S, HOP_S)  # 719
    for group in ("X9.SV13.", "X9.SV20.00"):
        a, b = load_group(tmp_path / "one.zarr", group), load_group(tmp_path / "split.zarr", group)
        assert a.sizes["time"] == four_hours and b.sizes["time"] == four_hours
    assert_same_store(tmp_path / "one.zarr", tmp_path / "split.zarr", groups=("X9.SV13.", "X9.SV20.00"))

    # The window straddling midnight (23:59:40) uses both day files and is complete.
    sv13 = load_group(tmp_path / "one.zarr", "X9.SV13.")
    k = int(np.flatnonzero(sv13.time.values == np.datetime64("2015-12-04T23:59:40"))[0])
    assert sv13.coverage.values[k].min() == 1.0 and np.isfinite(sv13.order_2.values[k]).all()
    files = json.loads(str(sv13.block_files.values[1]))
    assert {f["path"].rsplit(".", 1)[-1] for f in files} == {"338", "339"}  # both days were read
    assert all(f["size"] > 0 and f["mtime"] > 0 for f in files)

    # Mixed sampling rates: SV20 (20 Hz) has its own bins and frequencies.
    sv20 = load_group(tmp_path / "one.zarr", "X9.SV20.00")
    assert sv20.attrs["bins"] == WINDOW_S * 20 and sv13.attrs["bins"] == WINDOW_S * 50
    assert sv20.f1.values[0] == pytest.approx(10 * 2 ** -0.5) and sv13.f1.values[0] == pytest.approx(25 * 2 ** -0.5)
    # The missing day is an outage: not done, no error, noted, coverage 0.
    assert (sv20.block_done.values[2:] == 0).all() and list(sv20.block_error.values[2:]) == ["", ""]
    assert [json.loads(str(n)) for n in sv20.block_notes.values[2:]] == [{"no_data": True}] * 2
    assert (sv20.coverage.values[2 * PER_BLOCK:] == 0).all()
    # Every window that ends after midnight needs the missing day: all but the first two hours' windows.
    after_midnight = four_hours - n_windows(2 * HOUR, WINDOW_S, HOP_S)  # 360
    assert np.isnan(sv20.order_1.values[-after_midnight:]).all()

    # Equal to the same span transformed as one continuous stream.
    stream = Client(str(root)).get_waveforms("X9", "SV13", "", "HH?", obspy.UTCDateTime("2015-12-04T21:59:00"),
                                              obspy.UTCDateTime("2015-12-05T02:01:00"))
    ds = scatflow.transform_stream(stream, layers=SMALL_LAYERS, window_s=WINDOW_S, start="2015-12-04T22:00:00",
                                   end="2015-12-05T02:00:00").compute()
    np.testing.assert_array_equal(ds.time.values, sv13.time.values)
    np.testing.assert_array_equal(ds.order_1.values, sv13.order_1.values)
    np.testing.assert_array_equal(ds.order_2.values, sv13.order_2.values)


def test_resume_extend_and_refuse(archive, tmp_path, capsys):
    root, _ = archive
    early = write_config(tmp_path / "early.toml", sds=root, select=SV13, store="grow.zarr",
                         start="2015-12-04T00:00:00", end="2015-12-04T04:00:00", **RUN)
    late = write_config(tmp_path / "late.toml", sds=root, select=SV13, store="grow.zarr",
                        start="2015-12-04T04:00:00", end="2015-12-04T06:00:00", **RUN)
    whole = write_config(tmp_path / "whole.toml", sds=root, select=SV13, store="whole.zarr",
                         start="2015-12-04T00:00:00", end="2015-12-04T06:00:00", **RUN)
    store = tmp_path / "grow.zarr"
    assert main(["run", str(early), "--quiet"]) == 0
    assert xr.open_zarr(store, group="X9.SV13.").sizes["time"] == n_windows(4 * HOUR, WINDOW_S, HOP_S)  # default open
    assert main(["run", str(late), "--quiet"]) == 0
    # After growth the default opens (consolidated metadata) see the new length.
    six_hours = n_windows(6 * HOUR, WINDOW_S, HOP_S)  # 1079
    assert xr.open_zarr(store, group="X9.SV13.").sizes["time"] == six_hours
    assert xr.open_datatree(store, engine="zarr")["X9.SV13."].sizes["time"] == six_hours
    assert main(["run", str(whole), "--quiet"]) == 0
    b = load_group(tmp_path / "whole.zarr", "X9.SV13.")
    assert_same_store(store, tmp_path / "whole.zarr")
    capsys.readouterr()

    # Resume: forget two blocks, re-run: exactly those two are computed.
    g = zarr.open_group(store, mode="r+", use_consolidated=False)["X9.SV13."]
    g["block_done"][1] = 0
    g["block_done"][4] = 0
    assert main(["run", str(whole).replace("whole", "early"), "--dry-run"]) == 0
    assert "1 block(s) to compute" in capsys.readouterr().out
    assert main(["run", str(late), "--quiet"]) == 0  # covers blocks 3..5: only block 4 is missing there
    assert "done: 1 block(s)" in capsys.readouterr().out
    assert main(["run", str(early), "--quiet"]) == 0
    assert "done: 1 block(s)" in capsys.readouterr().out
    np.testing.assert_array_equal(load_group(store, "X9.SV13.").order_2.values, b.order_2.values)

    # A different design is refused, naming what differs; the store is untouched.
    for kwargs, key in (({"reduce": "max"}, "reduce"), ({"window_s": 20.0}, "window_s")):
        bad = write_config(tmp_path / "bad.toml", sds=root, select=SV13, store="grow.zarr",
                           start="2015-12-04T00:00:00", end="2015-12-04T06:00:00", **{**RUN, **kwargs})
        assert main(["run", str(bad), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "another design" in err and key in err
    assert main(["run", str(bad), "--quiet", "--overwrite"]) == 0
    assert load_group(store, "X9.SV13.").sizes["time"] == n_windows(6 * HOUR, 20.0, 10.0)  # 2159


def test_failed_block_recorded_and_retried(archive, tmp_path, capsys):
    root, _ = archive
    copy = tmp_path / "archive"
    shutil.copytree(root, copy)
    bad = copy / "2015" / "X9" / "SV13" / "HHZ.D" / "X9.SV13..HHZ.D.2015.339"
    good = bad.read_bytes()
    bad.write_bytes(b"garbage" * 1000)
    cfg = write_config(tmp_path / "c.toml", sds=copy, select=SV13, store="c.zarr",
                       start="2015-12-04T22:00:00", end="2015-12-05T02:00:00", **RUN)
    sizes = block_sizes(n_windows(4 * HOUR, WINDOW_S, HOP_S), PER_BLOCK)  # [180, 180, 180, 179]
    assert main(["run", str(cfg), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"failed: {len(sizes) - 1}" in out and "X9.SV13..HHZ" in out  # blocks 1-3 need 2015-12-05
    ds = load_group(tmp_path / "c.zarr", "X9.SV13.")
    assert list(ds.block_done.values) == [sizes[0], 0, 0, 0]
    assert all("X9.SV13..HHZ" in str(e) for e in ds.block_error.values[1:])
    bad.write_bytes(good)
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert f"done: {len(sizes) - 1} block(s)" in capsys.readouterr().out
    ds = load_group(tmp_path / "c.zarr", "X9.SV13.")
    assert list(ds.block_done.values) == sizes and not any(map(str, ds.block_error.values))
    root_attrs = zarr.open_group(tmp_path / "c.zarr", mode="r", use_consolidated=False).attrs["scatflow"]
    assert root_attrs["runs"][0]["blocks_failed"] and not root_attrs["runs"][-1]["blocks_failed"]
    assert set(root_attrs["versions"]) >= {"scatflow", "obspy", "numpy", "scipy", "dask", "xarray", "zarr"}
    assert root_attrs["config"]["input"]["sds"] == str(copy)
