"""Bad input on the main path: one clear line, exit status 2, and no store left behind."""

import numpy as np
import obspy
import pytest
from helpers import load_group, one_line_error, write_config

import scatflow
from scatflow.cli import main


def trace(seed_id, rate, seconds=600, start="2020-01-01T00:00:00", seed=0):
    net, sta, loc, cha = seed_id.split(".")
    data = np.random.default_rng(seed).integers(-500, 500, int(seconds * rate)).astype(np.int32)
    return obspy.Trace(data, header={"network": net, "station": sta, "location": loc, "channel": cha,
                                     "sampling_rate": rate, "starttime": obspy.UTCDateTime(start)})


# Errors found once the data is read come after `scatflow run` has started its local cluster: those
# tests are slow; config errors come before it.

# The files in data/, 20 s windows (400 samples at 20 Hz), hop 10 s.
RUN = {"paths": ["data/*.mseed"], "window_s": 20.0, "overlap": 0.5}


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.mark.slow
def test_not_miniseed_file(tmp_path, data_dir, capsys):
    (data_dir / "notes.mseed").write_text("this is not a seismogram\n" * 20)
    # Alone: nothing can run, one line, no store.
    line = one_line_error(capsys, write_config(tmp_path / "run.toml", **RUN))
    assert "notes.mseed" in line and "not a readable waveform file" in line
    assert not (tmp_path / "out.zarr").exists()
    # Beside a good file: that file is refused with its reason, the good one runs, exit 1.
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "good.mseed"), format="MSEED")
    assert main(["run", str(tmp_path / "run.toml"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert f"refused {data_dir / 'notes.mseed'}: not a readable waveform file" in out and "done: 1 block(s)" in out


@pytest.mark.slow
def test_empty_and_truncated_files(tmp_path, data_dir, capsys):
    path = data_dir / "a.mseed"
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(path), format="MSEED", reclen=512)
    raw = path.read_bytes()
    path.unlink()
    cfg = write_config(tmp_path / "run.toml", **RUN)
    (data_dir / "empty.mseed").write_bytes(b"")
    assert "empty.mseed: empty file" in one_line_error(capsys, cfg)
    (data_dir / "empty.mseed").unlink()
    (data_dir / "cut.mseed").write_bytes(raw[: len(raw) // 2 + 100])  # cut mid-record
    assert "cut.mseed: truncated or damaged miniSEED" in one_line_error(capsys, cfg)
    assert not (tmp_path / "out.zarr").exists()
    # Beside a good file, each is refused by name and the rest runs (exit 1 says something was left out).
    path.write_bytes(raw)
    (data_dir / "empty.mseed").write_bytes(b"")
    assert main(["run", str(cfg), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "refused: 2" in out and "empty.mseed: empty file" in out and "cut.mseed: truncated" in out


@pytest.mark.slow
def test_channels_with_different_rates(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0), trace("XX.AAA..HHN", 40.0)]).write(
        str(data_dir / "mixed.mseed"), format="MSEED")
    line = one_line_error(capsys, write_config(tmp_path / "run.toml", **RUN))
    assert "XX.AAA." in line and "different sampling rates" in line and "XX.AAA..HHN 40 Hz" in line
    assert not (tmp_path / "out.zarr").exists()
    # Beside another station, only that station is refused: the other one runs (exit 1).
    obspy.Stream([trace("XX.BBB..HHZ", 20.0)]).write(str(data_dir / "b.mseed"), format="MSEED")
    assert main(["run", str(tmp_path / "run.toml"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "refused XX.AAA.: its channels have different sampling rates (XX.AAA..HHN 40 Hz" in out, out
    assert "done: 1 block(s)" in out and list(scatflow.open_results(tmp_path / "out.zarr")) == ["XX.BBB."]


@pytest.mark.slow
def test_rate_not_matching_design(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "a.mseed"), format="MSEED")
    net = scatflow.ScatteringNetwork({"octaves": 3, "resolution": 2, "quality": 2}, bins=800, sampling_rate=40.0)
    net.save(tmp_path / "design.json")
    line = one_line_error(capsys, write_config(tmp_path / "run.toml", layers=None, design="design.json", **RUN))
    assert "XX.AAA..HHZ" in line and "20.0 Hz does not match the design's 40.0 Hz" in line


@pytest.mark.slow
def test_window_not_whole_samples(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "a.mseed"), format="MSEED")
    cfg = write_config(tmp_path / "run.toml", block_s=1001.0, **RUN)
    cfg.write_text(cfg.read_text().replace("window_s = 20.0", "window_s = 20.02"))
    line = one_line_error(capsys, cfg)
    assert "network.window_s" in line and "whole number of samples at 20.0 Hz" in line


def test_a_window_whose_hop_misses_the_default_block_names_the_window(tmp_path, data_dir, capsys):
    """10.03 s windows (hop 5.015 s) do not fit the default 6 h block: the user wrote the window,
    not the block, so the line names the window and offers windows that fit."""
    cfg = write_config(tmp_path / "run.toml", **dict(RUN, window_s=10.03))
    line = one_line_error(capsys, cfg, "'network.window_s' (10.03 s)", "hop of 5.015 s",
                          "default 'output.block_s' (21600 s)")
    offered = [float(w) for w in line.split("(e.g. ")[1].split(")")[0].replace(" s", "").split(" or ")]
    assert offered and all((21600 / (w / 2)) % 1 == 0 for w in offered), line
    # A block the user set is the user's to fix.
    cfg = write_config(tmp_path / "run.toml", block_s=3600.0, **dict(RUN, window_s=10.03))
    assert "'output.block_s' (3600.0 s) must be a positive multiple" in one_line_error(capsys, cfg)


@pytest.mark.parametrize("verb", ["run", "analyze"])
@pytest.mark.parametrize("workers", ["0", "-2"])
def test_workers_below_one_is_one_line_naming_the_option(tmp_path, data_dir, capsys, verb, workers):
    cfg = write_config(tmp_path / "run.toml", **RUN)
    one_line_error(capsys, [verb, str(cfg), "--workers", workers, "--quiet"], "--workers must be at least 1", f"got {workers}")
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize(
    "edit, key",
    [
        (("overlap = 0.5", "overlap = 0.5\noverlapp = 0.4"), "network.overlapp"),
        (("overlap = 0.5", "overlap = 1.0"), "network.overlap"),
        (("window_s = 20.0", "window_s = -5.0"), "network.window_s"),
        (("window_s = 20.0", 'window_s = "20"'), "network.window_s"),
        (("[cluster]", "[clustre]"), "clustre"),
        (('dtype = "float64"', 'dtype = "float16"'), "output.dtype"),
    ],
)
def test_bad_config_names_the_key(tmp_path, data_dir, capsys, edit, key):
    cfg = write_config(tmp_path / "run.toml", **RUN)
    cfg.write_text(cfg.read_text().replace(*edit))
    assert key in one_line_error(capsys, cfg)


@pytest.mark.slow
def test_store_path_is_a_file(tmp_path, data_dir, capsys):
    obspy.Stream([trace("XX.AAA..HHZ", 20.0)]).write(str(data_dir / "a.mseed"), format="MSEED")
    cfg = write_config(tmp_path / "run.toml", **RUN)
    (tmp_path / "out.zarr").write_text("I am a file")
    assert "output.store" in one_line_error(capsys, cfg)
    assert (tmp_path / "out.zarr").read_text() == "I am a file"
    cfg.write_text(cfg.read_text().replace('store = "out.zarr"', 'store = "out.zarr/inner.zarr"'))
    assert "output.store" in one_line_error(capsys, cfg)


@pytest.mark.slow
def test_gap_gives_nan_or_filled_windows(tmp_path, data_dir, capsys):
    """Windows missing samples are NaN by default; with min_coverage they are computed."""
    a = trace("XX.AAA..HHZ", 20.0, seconds=300)
    b = trace("XX.AAA..HHZ", 20.0, seconds=300, start="2020-01-01T00:05:30", seed=1)  # 30 s gap
    obspy.Stream([a, b]).write(str(data_dir / "gap.mseed"), format="MSEED")
    cfg = write_config(tmp_path / "run.toml", **RUN)
    assert main(["run", str(cfg), "--quiet"]) == 0
    ds = load_group(tmp_path / "out.zarr", "XX.AAA.")
    cov = ds.coverage.values[:, 0]
    # From the window arithmetic: a window [s, s + 20 s) misses its overlap with the gap [300 s, 330 s).
    starts = (ds.time.values - np.datetime64("2020-01-01T00:00:00")) / np.timedelta64(1, "s")
    missing = np.clip(np.minimum(starts + 20, 330) - np.maximum(starts, 300), 0, None)
    np.testing.assert_allclose(cov, 1 - missing / 20)
    gapped = cov < 1
    # Windows touching 00:05:00-00:05:30 start at 290, 300, 310 and 320 s.
    assert gapped.sum() == (missing > 0).sum() == 4 and np.isclose(cov.min(), 0.0)
    assert np.isnan(ds.order_1.values[gapped]).all() and np.isfinite(ds.order_1.values[~gapped]).all()
    cfg.write_text(cfg.read_text().replace("overlap = 0.5", "overlap = 0.5\nmin_coverage = 0.5")
                   .replace("out.zarr", "out2.zarr"))
    assert main(["run", str(cfg), "--quiet"]) == 0
    ds2 = load_group(tmp_path / "out2.zarr", "XX.AAA.")
    filled = (cov >= 0.5) & gapped
    assert filled.sum() == 2  # the windows at 290 s and 320 s miss 10 of their 20 s
    assert np.isfinite(ds2.order_1.values[filled]).all()
    assert np.isnan(ds2.order_1.values[cov < 0.5]).all()
    np.testing.assert_array_equal(ds2.order_2.values[~gapped], ds.order_2.values[~gapped])
