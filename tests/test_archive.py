"""Archive scale on a synthetic SDS archive: split invariance, resume, growth, failures, mixed rates."""

import json
import shutil

import numpy as np
import obspy
import pytest
import xarray as xr
import zarr
from obspy.clients.filesystem.sds import Client

import scatflow
from scatflow.cli import main

LAYERS = [{"octaves": 4, "resolution": 2, "quality": 2}, {"octaves": 3, "resolution": 1, "quality": 2}]


@pytest.fixture
def archive(sds_archive):
    return sds_archive


def config(path, archive_root, start, end, store, select=("X9.SV13.*.*", "X9.SV20.*.*"), reduce="median",
           window_s=40.0, layers=LAYERS, block_s=3600, cluster="workers = 2\ndashboard = false"):
    """Write a run config for the synthetic archive."""
    layers = json.dumps(layers).replace('"', "").replace(":", " =")
    path.write_text(f"""
[input]
sds = "{archive_root}"
select = {json.dumps(list(select))}
start = "{start}"
end = "{end}"
[network]
window_s = {window_s}
overlap = 0.5
reduce = "{reduce}"
layers = {layers}
[output]
store = "{store}"
dtype = "float64"
block_s = {block_s}
[cluster]
{cluster}
""")
    return path


def load(store, group):
    return xr.open_zarr(store, group=group, consolidated=False).load()


def test_split_invariance_and_mixed_rates(archive, tmp_path, capsys):
    root, info = archive
    one = config(tmp_path / "one.toml", root, "2015-12-04T22:00:00", "2015-12-05T02:00:00", "one.zarr")
    # SV20 has no data on 2015-12-05: its blocks after midnight fail, the others finish.
    assert main(["run", str(one), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "failed X9.SV20.00 block 2: X9.SV20.00: no data between" in out
    first = config(tmp_path / "a.toml", root, "2015-12-04T22:00:00", "2015-12-05T00:00:00", "split.zarr")
    second = config(tmp_path / "b.toml", root, "2015-12-05T00:00:00", "2015-12-05T02:00:00", "split.zarr")
    assert main(["run", str(first), "--quiet"]) == 0
    assert main(["run", str(second), "--quiet"]) == 1
    capsys.readouterr()

    for group in ("X9.SV13.", "X9.SV20.00"):
        a, b = load(tmp_path / "one.zarr", group), load(tmp_path / "split.zarr", group)
        assert a.sizes["time"] == 719 and b.sizes["time"] == 719
        for name in ("order_1", "order_2", "coverage", "time"):
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=f"{group} {name}")
        np.testing.assert_array_equal(a.block_done.values, b.block_done.values)

    # The window straddling midnight (23:59:40) uses both day files and is complete.
    sv13 = load(tmp_path / "one.zarr", "X9.SV13.")
    k = int(np.flatnonzero(sv13.time.values == np.datetime64("2015-12-04T23:59:40"))[0])
    assert sv13.coverage.values[k].min() == 1.0 and np.isfinite(sv13.order_2.values[k]).all()
    files = json.loads(str(sv13.block_files.values[1]))
    assert {f["path"].rsplit(".", 1)[-1] for f in files} == {"338", "339"}  # both days were read
    assert all(f["size"] > 0 and f["mtime"] > 0 for f in files)

    # Mixed sampling rates: SV20 (20 Hz) has its own bins and frequencies.
    sv20 = load(tmp_path / "one.zarr", "X9.SV20.00")
    assert sv20.attrs["bins"] == 800 and sv13.attrs["bins"] == 2000
    assert sv20.f1.values[0] == pytest.approx(10 * 2 ** -0.5) and sv13.f1.values[0] == pytest.approx(25 * 2 ** -0.5)
    assert list(sv20.block_error.values[2:]) != ["", ""] and (sv20.block_done.values[2:] == 0).all()
    assert np.isnan(sv20.order_1.values[-360:]).all()

    # Equal to the same span transformed as one continuous stream.
    stream = Client(str(root)).get_waveforms("X9", "SV13", "", "HH?", obspy.UTCDateTime("2015-12-04T21:59:00"),
                                              obspy.UTCDateTime("2015-12-05T02:01:00"))
    ds = scatflow.transform_stream(stream, layers=LAYERS, window_s=40.0, start="2015-12-04T22:00:00",
                                   end="2015-12-05T02:00:00").compute()
    np.testing.assert_array_equal(ds.time.values, sv13.time.values)
    np.testing.assert_array_equal(ds.order_1.values, sv13.order_1.values)
    np.testing.assert_array_equal(ds.order_2.values, sv13.order_2.values)


def test_resume_extend_and_refuse(archive, tmp_path, capsys):
    root, _ = archive
    sel = ("X9.SV13.*.*",)
    early = config(tmp_path / "early.toml", root, "2015-12-04T00:00:00", "2015-12-04T04:00:00", "grow.zarr", sel)
    late = config(tmp_path / "late.toml", root, "2015-12-04T04:00:00", "2015-12-04T06:00:00", "grow.zarr", sel)
    whole = config(tmp_path / "whole.toml", root, "2015-12-04T00:00:00", "2015-12-04T06:00:00", "whole.zarr", sel)
    store = tmp_path / "grow.zarr"
    assert main(["run", str(early), "--quiet"]) == 0
    assert xr.open_zarr(store, group="X9.SV13.").sizes["time"] == 719  # default open
    assert main(["run", str(late), "--quiet"]) == 0
    # After growth the default opens (consolidated metadata) see the new length.
    assert xr.open_zarr(store, group="X9.SV13.").sizes["time"] == 1079
    assert xr.open_datatree(store, engine="zarr")["X9.SV13."].sizes["time"] == 1079
    assert main(["run", str(whole), "--quiet"]) == 0
    a, b = load(store, "X9.SV13."), load(tmp_path / "whole.zarr", "X9.SV13.")
    for name in ("order_1", "order_2", "coverage", "time", "block_done"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
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
    np.testing.assert_array_equal(load(store, "X9.SV13.").order_2.values, b.order_2.values)

    # A different design is refused, naming what differs; the store is untouched.
    for kwargs, key in (({"reduce": "max"}, "reduce"), ({"window_s": 20.0}, "window_s")):
        bad = config(tmp_path / "bad.toml", root, "2015-12-04T00:00:00", "2015-12-04T06:00:00", "grow.zarr", sel,
                     **kwargs)
        assert main(["run", str(bad), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "another design" in err and key in err
    assert main(["run", str(bad), "--quiet", "--overwrite"]) == 0
    assert load(store, "X9.SV13.").sizes["time"] == 2159  # 20 s windows, 10 s hop


def test_failed_block_recorded_and_retried(archive, tmp_path, capsys):
    root, _ = archive
    copy = tmp_path / "archive"
    shutil.copytree(root, copy)
    bad = copy / "2015" / "X9" / "SV13" / "HHZ.D" / "X9.SV13..HHZ.D.2015.339"
    good = bad.read_bytes()
    bad.write_bytes(b"garbage" * 1000)
    cfg = config(tmp_path / "c.toml", copy, "2015-12-04T22:00:00", "2015-12-05T02:00:00", "c.zarr", ("X9.SV13.*.*",))
    assert main(["run", str(cfg), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "failed: 3" in out and "X9.SV13..HHZ" in out  # blocks 1-3 need 2015-12-05
    ds = load(tmp_path / "c.zarr", "X9.SV13.")
    assert list(ds.block_done.values) == [180, 0, 0, 0]
    assert all("X9.SV13..HHZ" in str(e) for e in ds.block_error.values[1:])
    bad.write_bytes(good)
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert "done: 3 block(s)" in capsys.readouterr().out
    ds = load(tmp_path / "c.zarr", "X9.SV13.")
    assert list(ds.block_done.values) == [180, 180, 180, 179] and not any(map(str, ds.block_error.values))
    root_attrs = zarr.open_group(tmp_path / "c.zarr", mode="r", use_consolidated=False).attrs["scatflow"]
    assert root_attrs["runs"][0]["blocks_failed"] and not root_attrs["runs"][-1]["blocks_failed"]
    assert set(root_attrs["versions"]) >= {"scatflow", "obspy", "numpy", "scipy", "dask", "xarray", "zarr"}
    assert root_attrs["config"]["input"]["sds"] == str(copy)
