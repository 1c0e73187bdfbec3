"""The main workflow on the example day and on a real recording, against the seed notebook."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import obspy
import pytest
import xarray as xr
from helpers import TUTORIAL_LAYERS, assert_close, n_blocks, n_windows, windows_per_block, write_config

import scatflow
from scatflow.cli import main

# The example day: 40 s windows at 50 Hz (2000 samples), hop 20 s, default 6 h blocks.
DAY_WINDOWS = n_windows(86400, 40.0, 20.0)  # 4319
DAY_BLOCKS = n_blocks(DAY_WINDOWS, windows_per_block(21600, 20.0))  # 4 blocks of 1080
HOUR_WINDOWS = n_windows(3600, 40.0, 20.0)  # 179


@pytest.fixture(scope="module")
def scatseisnet():
    """The oracle, for the tests that compare with it."""
    return pytest.importorskip("scatseisnet")


def set_keys(config: Path, **values) -> None:
    """Rewrite ``key = ...`` lines of a generated config."""
    text = config.read_text()
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {json.dumps(value)}", text)
        assert n == 1, key
    config.write_text(text)


def notebook_segments(stream, window_s, bins):
    """The seed notebook's windows: ObsPy's Stream.slide and tr.data[:bins]."""
    times, segments = [], []
    for window in stream.slide(window_length=window_s, step=window_s / 2):
        times.append(np.datetime64(window[0].stats.starttime.ns, "ns"))
        segments.append(np.array([tr.data[:bins] for tr in window], dtype=float))
    ids = [tr.id for tr in window]
    return np.array(times), np.array(segments), ids


# Tests using the example day are slow: making it runs scatflow on a local Dask cluster.
@pytest.fixture(scope="module")
def example_day(tmp_path_factory):
    root = tmp_path_factory.mktemp("day")
    assert main(["example", str(root), "--quiet"]) == 0
    config = root / "config.toml"
    set_keys(config, dtype="float64")
    assert main(["run", str(config), "--workers", "2", "--quiet"]) == 0
    return root, root / "results.zarr"


@pytest.mark.slow
def test_example_day_equals_notebook_procedure(example_day, scatseisnet):
    root, store = example_day
    (path,) = sorted((root / "data").glob("*.mseed"))
    stream = obspy.read(str(path))
    times, segments, ids = notebook_segments(stream, 40.0, 2000)
    ds = xr.open_zarr(store, group="X9.SV13.", consolidated=False)
    assert len(times) == DAY_WINDOWS
    np.testing.assert_array_equal(ds.time.values, times)
    # The reference needs ~25 ms a window: check every 7th window plus each block edge.
    chunk = ds.attrs["block_windows"]
    pick = sorted(set(range(0, DAY_WINDOWS, 7)) | {chunk - 1, chunk, 2 * chunk - 1, 2 * chunk, DAY_WINDOWS - 1})
    net = scatseisnet.ScatteringNetwork(*TUTORIAL_LAYERS, bins=2000, sampling_rate=50.0)
    ref1, ref2 = net.transform(segments[pick], reduce_type=np.median)
    sub = ds.isel(time=pick).sel(channel=ids)
    assert sub.order_1.dtype == np.float64
    assert_close(sub.order_1.values, ref1, what="order_1")
    assert_close(sub.order_2.values, ref2, what="order_2")
    assert float(ds.coverage.min()) == 1.0


@pytest.mark.slow
def test_store_opens_with_plain_xarray_without_scatflow(example_day):
    _, store = example_day
    code = f"""
import sys, json, warnings
sys.modules["scatflow"] = None  # prove the store needs no scatflow to read
import numpy as np, xarray as xr
ds = xr.open_zarr({str(store)!r}, group="X9.SV13.")
tree = xr.open_datatree({str(store)!r}, engine="zarr")
node = tree["X9.SV13."].to_dataset()
print(json.dumps({{
    "dims": dict(ds.sizes), "vars": sorted(ds.data_vars), "tree_vars": sorted(node.data_vars),
    "time0": str(ds.time.values[0]), "time_dtype": str(ds.time.dtype),
    "channels": [str(c) for c in ds.channel.values], "f1_units": ds.f1.attrs["units"],
    "f1": ds.f1.values.tolist(), "f2": ds.f2.values.tolist(),
    "attrs": sorted(ds.attrs), "root": sorted(tree.attrs["scatflow"]),
    "order2_dtype": str(ds.order_2.dtype),
}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    # 24 = 6 octaves x 4 filters an octave, 6 = 6 octaves x 1.
    assert info["dims"] == {"time": DAY_WINDOWS, "channel": 3, "f1": 24, "f2": 6, "block": DAY_BLOCKS}
    assert {"order_1", "order_2", "coverage"} <= set(info["vars"]) and info["tree_vars"] == info["vars"]
    assert info["time0"].startswith("2015-12-04T00:00:00") and info["time_dtype"] == "datetime64[ns]"
    assert info["channels"] == ["X9.SV13..HHE", "X9.SV13..HHN", "X9.SV13..HHZ"]
    assert info["f1_units"] == "Hz" and info["order2_dtype"] == "float64"
    net = scatflow.ScatteringNetwork(*TUTORIAL_LAYERS, bins=2000, sampling_rate=50.0)
    assert info["f1"] == net.banks[0].centers.tolist() and info["f2"] == net.banks[1].centers.tolist()
    assert {"network", "reduce", "window_s", "hop_s", "sampling_rate_hz", "scatflow_version"} <= set(info["attrs"])
    assert {"design", "config", "versions", "runs"} <= set(info["root"])
    # Time is stored as int64 nanoseconds with fixed units, never inferred ones.
    meta = json.loads((store / "X9.SV13." / "time" / "zarr.json").read_text())
    assert meta["data_type"] == "int64"
    assert meta["attributes"]["units"] == "nanoseconds since 1970-01-01"


@pytest.mark.slow
def test_rerun_computes_nothing(example_day, capsys):
    root, store = example_day
    before = {p: p.stat().st_mtime_ns for p in (store / "X9.SV13." / "order_2").rglob("*") if p.is_file()}
    assert main(["run", str(root / "config.toml"), "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "done: 0 block(s)" in out
    after = {p: p.stat().st_mtime_ns for p in (store / "X9.SV13." / "order_2").rglob("*") if p.is_file()}
    assert before == after


@pytest.mark.slow
def test_a_station_day_is_computed_in_every_worker_process(example_day):
    """The day is one shard (4 blocks) on 2 workers: each block is a task of its own, so both
    processes read, preprocess and compute at once (one task per shard still writes them). Its
    numbers are those of the notebook and of transform_stream (the tests around this one)."""
    import zarr

    root, store = example_day
    (first, *_) = zarr.open_group(str(store), mode="r").attrs["scatflow"]["runs"]
    assert first["blocks_done"] == DAY_BLOCKS
    assert first["workers_count"] == 2, first["workers"]


@pytest.mark.slow
def test_transform_stream_equals_store(example_day):
    root, store = example_day
    (path,) = sorted((root / "data").glob("*.mseed"))
    t0 = obspy.UTCDateTime("2015-12-04T05:00:00")
    stream = obspy.read(str(path), starttime=t0 - 60, endtime=t0 + 7200)
    ds = scatflow.transform_stream(stream, layers=TUTORIAL_LAYERS, window_s=40.0, start=t0, end=t0 + 3600, chunk=50)
    assert ds.order_2.chunks[0][0] == 50  # lazy, chunked along windows
    ds = ds.compute()
    stored = xr.open_zarr(store, group="X9.SV13.", consolidated=False).sel(time=ds.time)
    assert ds.sizes["time"] == HOUR_WINDOWS
    np.testing.assert_array_equal(ds.order_1.values, stored.order_1.values)
    np.testing.assert_array_equal(ds.order_2.values, stored.order_2.values)


@pytest.mark.slow
def test_real_recording_anmo(tmp_path, scatseisnet):
    """A real day-long 1 Hz record shipped in ObsPy's wheel (IU.ANMO.00.LHZ, 2010-01-01)."""
    path = Path(obspy.__file__).parent / "signal" / "tests" / "data" / "IUANMO.seed"
    layers = [{"octaves": 5, "resolution": 4, "quality": 2}, {"octaves": 5, "resolution": 2, "quality": 2}]
    config = write_config(tmp_path / "anmo.toml", paths=[path], window_s=600.0, layers=layers, store="anmo.zarr",
                          block_s=21600)
    assert main(["run", str(config), "--quiet"]) == 0
    ds = xr.open_zarr(tmp_path / "anmo.zarr", group="IU.ANMO.00", consolidated=False)
    stream = obspy.read(str(path))
    times, segments, ids = notebook_segments(stream, 600.0, 600)
    # Stream.slide stops one window early (it measures to the last sample's time, not past it);
    # scatflow also computes the final window, whose 600 samples all exist.
    assert ds.sizes["time"] == len(times) + 1
    np.testing.assert_array_equal(ds.time.values[: len(times)], times)
    net = scatseisnet.ScatteringNetwork(*layers, bins=600, sampling_rate=1.0)
    ref1, ref2 = net.transform(segments, reduce_type=np.median)
    got = ds.isel(time=slice(0, len(times))).sel(channel=ids)
    assert_close(got.order_1.values, ref1, what="order_1")
    assert_close(got.order_2.values, ref2, what="order_2")
    last = stream[0].data[-600:].astype(float)[None, None]
    assert_close(ds.order_1.values[-1:], net.transform(last, reduce_type=np.median)[0])


@pytest.mark.slow
def test_join_running_scheduler(example_day, tmp_path):
    """`--scheduler ADDRESS` runs the blocks on an existing cluster; same numbers as the local run."""
    from distributed import LocalCluster

    root, store = example_day
    config = tmp_path / "hour.toml"
    config.write_text((root / "config.toml").read_text().replace("data/", f"{root}/data/"))
    set_keys(config, dtype="float64", start="2015-12-04T06:00:00", end="2015-12-04T07:00:00", store="hour.zarr")
    with LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
        assert main(["run", str(config), "--scheduler", cluster.scheduler_address, "--quiet"]) == 0
        assert len(cluster.scheduler.workers) == 1  # ran on that cluster, which is still up
    got = xr.open_zarr(tmp_path / "hour.zarr", group="X9.SV13.", consolidated=False).load()
    ref = xr.open_zarr(store, group="X9.SV13.", consolidated=False).sel(time=got.time).load()
    assert got.sizes["time"] == HOUR_WINDOWS
    np.testing.assert_array_equal(got.order_2.values, ref.order_2.values)


def test_cli_starts_the_cluster_before_the_heavy_imports():
    """`scatflow run` starts the local workers before it loads obspy's readers, xarray and zarr, so
    the workers' start overlaps the driver's imports and planning; the public names still resolve."""
    code = (
        "import sys\n"
        "import scatflow.cli, scatflow.workflow.cluster, scatflow.config\n"
        "heavy = [m for m in ('xarray', 'zarr', 'dask.array', 'scipy.signal', 'scatflow.workflow.run', 'scatflow.workflow.plan', 'scatflow.workflow.blocks') if m in sys.modules]\n"
        "print(heavy)\n"
        "import scatflow\n"
        "print(scatflow.ScatteringNetwork.__name__, scatflow.transform_stream.__name__, scatflow.load_network.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "ScatteringNetwork transform_stream load_network"]
