"""Bad input on the main path: one clear line, exit status 2, and no store left behind."""

import json

import numpy as np
import obspy
import pytest

import scatflow
from scatflow.cli import main

LAYERS = "[{ octaves = 3, resolution = 2, quality = 2 }, { octaves = 3, resolution = 1, quality = 2 }]"


def trace(seed_id, rate, seconds=600, start="2020-01-01T00:00:00", seed=0):
    net, sta, loc, cha = seed_id.split(".")
    data = np.random.default_rng(seed).integers(-500, 500, int(seconds * rate)).astype(np.int32)
    return obspy.Trace(data, header={"network": net, "station": sta, "location": loc, "channel": cha,
                                     "sampling_rate": rate, "starttime": obspy.UTCDateTime(start)})


def write_config(tmp_path, paths=("data/*.mseed",), network_extra="", output_extra="", top=""):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f"""{top}
[input]
paths = {json.dumps(list(paths))}
[network]
window_s = 20.0
overlap = 0.5
{network_extra}
[output]
store = "out.zarr"
{output_extra}
[cluster]
workers = 1
dashboard = false
""")
    return cfg


def run_error(cfg, capsys):
    code = main(["run", str(cfg), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scatflow: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


def test_not_miniseed_file(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "good.mseed"), format="MSEED")
    (data_dir / "notes.mseed").write_text("this is not a seismogram\n" * 20)
    line = run_error(write_config(tmp_path, network_extra=f"layers = {LAYERS}"), capsys)
    assert "notes.mseed" in line and "not a readable waveform file" in line
    assert not (tmp_path / "out.zarr").exists()


def test_empty_and_truncated_files(tmp_path, data_dir, capsys):
    path = data_dir / "a.mseed"
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(path), format="MSEED", reclen=512)
    raw = path.read_bytes()
    (data_dir / "empty.mseed").write_bytes(b"")
    cfg = write_config(tmp_path, network_extra=f"layers = {LAYERS}")
    assert "empty.mseed" in run_error(cfg, capsys)
    (data_dir / "empty.mseed").unlink()
    (data_dir / "cut.mseed").write_bytes(raw[: len(raw) // 2 + 100])  # cut mid-record
    assert "cut.mseed" in run_error(cfg, capsys)
    assert not (tmp_path / "out.zarr").exists()


def test_channels_with_different_rates(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0), trace("XX.AAA..HHN", 40.0)]).write(
        str(data_dir / "mixed.mseed"), format="MSEED")
    line = run_error(write_config(tmp_path, network_extra=f"layers = {LAYERS}"), capsys)
    assert "XX.AAA." in line and "different sampling rates" in line and "XX.AAA..HHN 40.0 Hz" in line
    assert not (tmp_path / "out.zarr").exists()


def test_rate_not_matching_design(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "a.mseed"), format="MSEED")
    net = scatflow.ScatteringNetwork({"octaves": 3, "resolution": 2, "quality": 2}, bins=800, sampling_rate=40.0)
    net.save(tmp_path / "design.json")
    line = run_error(write_config(tmp_path, network_extra='design = "design.json"'), capsys)
    assert "XX.AAA..HHZ" in line and "20.0 Hz does not match the design's 40.0 Hz" in line


def test_window_not_whole_samples(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "a.mseed"), format="MSEED")
    cfg = write_config(tmp_path, network_extra=f"layers = {LAYERS}", output_extra="block_s = 1001.0")
    cfg.write_text(cfg.read_text().replace("window_s = 20.0", "window_s = 20.02"))
    line = run_error(cfg, capsys)
    assert "network.window_s" in line and "whole number of samples at 20.0 Hz" in line


@pytest.mark.parametrize(
    "edit, key",
    [
        (("overlap = 0.5", "overlap = 0.5\noverlapp = 0.4"), "network.overlapp"),
        (("overlap = 0.5", "overlap = 1.0"), "network.overlap"),
        (("window_s = 20.0", "window_s = -5.0"), "network.window_s"),
        (("window_s = 20.0", 'window_s = "20"'), "network.window_s"),
        (("[cluster]", "[clustre]"), "clustre"),
        (('store = "out.zarr"', 'store = "out.zarr"\ndtype = "float16"'), "output.dtype"),
    ],
)
def test_bad_config_names_the_key(tmp_path, data_dir, capsys, edit, key):
    cfg = write_config(tmp_path, network_extra=f"layers = {LAYERS}")
    cfg.write_text(cfg.read_text().replace(*edit))
    assert key in run_error(cfg, capsys)


def test_store_path_is_a_file(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "a.mseed"), format="MSEED")
    cfg = write_config(tmp_path, network_extra=f"layers = {LAYERS}")
    (tmp_path / "out.zarr").write_text("I am a file")
    assert "output.store" in run_error(cfg, capsys)
    assert (tmp_path / "out.zarr").read_text() == "I am a file"
    cfg.write_text(cfg.read_text().replace('store = "out.zarr"', 'store = "out.zarr/inner.zarr"'))
    assert "output.store" in run_error(cfg, capsys)


def test_gap_gives_nan_or_filled_windows(tmp_path, data_dir, capsys):
    """Windows missing samples are NaN by default; with min_coverage they are computed."""
    a = trace("XX.AAA..HHZ", 20.0, seconds=300)
    b = trace("XX.AAA..HHZ", 20.0, seconds=300, start="2020-01-01T00:05:30", seed=1)  # 30 s gap
    obspy.Stream([a, b]).write(str(data_dir / "gap.mseed"), format="MSEED")
    cfg = write_config(tmp_path, network_extra=f"layers = {LAYERS}")
    assert main(["run", str(cfg), "--quiet"]) == 0
    import xarray as xr

    ds = xr.open_zarr(tmp_path / "out.zarr", group="XX.AAA.", consolidated=False).load()
    cov = ds.coverage.values[:, 0]
    gapped = cov < 1
    assert gapped.sum() == 4 and np.isclose(cov.min(), 0.0)  # windows touching 00:05:00-00:05:30
    assert np.isnan(ds.order_1.values[gapped]).all() and np.isfinite(ds.order_1.values[~gapped]).all()
    cfg.write_text(cfg.read_text().replace("overlap = 0.5", "overlap = 0.5\nmin_coverage = 0.5")
                   .replace("out.zarr", "out2.zarr"))
    assert main(["run", str(cfg), "--quiet"]) == 0
    ds2 = xr.open_zarr(tmp_path / "out2.zarr", group="XX.AAA.", consolidated=False).load()
    filled = (cov >= 0.5) & gapped
    assert filled.sum() == 2
    assert np.isfinite(ds2.order_1.values[filled]).all()
    assert np.isnan(ds2.order_1.values[cov < 0.5]).all()
    np.testing.assert_array_equal(ds2.order_2.values[~gapped], ds.order_2.values[~gapped])
