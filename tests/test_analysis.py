"""``scatflow analyze``, ``export`` and ``plot --analysis`` on small synthetic stores, in one
process (Dask's threaded scheduler; the command's cluster is replaced by a no-op)."""

import contextlib
import re
import json
import shutil

import sys

import numpy as np
import pytest
import xarray as xr
import zarr
from helpers import SMALL_LAYERS, one_line_error, run_in_process

from scatflow.workflow import cluster as clustermod
from scatflow.analysis.analyze import analyze
from scatflow.analysis.features import log_features
from scatflow.analysis.model import Model
from scatflow.analysis.sample import sample_indices
from scatflow.cli import main
from scatflow.config import parse_config
from scatflow.store.reader import StoreReader
from scatflow.store.writer import Store
from scatflow.synthetic.store import write_store

pytest.importorskip("sklearn")

N, CHUNK = 900, 90
STATIONS = ["X9.A.", "X9.B."]
GAP = slice(100, 130)  # NaN windows at every station
PNG = b"\x89PNG\r\n\x1a\n"


def make_store(path, n=N, stations=STATIONS, dtype="float32", **kw):
    return write_store(path, stations, n, layers=SMALL_LAYERS, sampling_rate=20.0, block_windows=CHUNK,
                       dtype=dtype, nan_windows=kw.pop("nan_windows", GAP), **kw)


def write_toml(path, store, **analysis):
    lines = ["[input]", 'paths = ["unused.mseed"]', "[network]",
             "layers = [{ octaves = 4, resolution = 2, quality = 2 }, { octaves = 3, resolution = 1, quality = 2 }]",
             "[output]", f'store = "{store}"', "[analysis]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in analysis.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def cfg_of(store, **analysis):
    return parse_config({"input": {"paths": ["unused.mseed"]},
                         "network": {"layers": SMALL_LAYERS}, "output": {"store": str(store)},
                         "analysis": analysis})


@pytest.fixture
def no_cluster(monkeypatch):
    """The command's Dask cluster replaced by the threaded scheduler of this process."""
    monkeypatch.setattr(clustermod, "connect", lambda cfg, log=print: contextlib.nullcontext())


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path / "s.zarr").path


def raw_features(store, key, model):
    """The model's raw feature matrix of a station, built here with NumPy from the store."""
    ds = xr.open_zarr(store, group=key, consolidated=False).load()
    codes = [c.split(".")[-1] for c in ds.channel.values]
    perm = [codes.index(c) for c in model.layout.codes]
    n = ds.sizes["time"]
    return np.hstack([ds.order_1.values[:, perm].reshape(n, -1), ds.order_2.values[:, perm].reshape(n, -1)])


# -- the core ---------------------------------------------------------------------------------
def test_layout_and_every_window_labelled_by_the_stored_model(store):
    summary = analyze(cfg_of(store, sample=400, components=3, clusters=3), log=lambda m: None)
    assert summary.fitted and summary.windows == 2 * N and summary.labelled_now == 2 * N
    assert summary.cluster_sizes[-1] == 2 * (GAP.stop - GAP.start)
    # Plain xarray reads the model and the results.
    m = xr.open_zarr(store, group="analysis/ica", consolidated=False).load()
    assert m.unmixing.dims == ("component", "feature") and m.mixing.dims == ("feature", "component")
    assert m.centroids.dims == ("cluster", "component") and m.centroids.shape == (3, 3)
    f1, f2 = 8, 3  # SMALL_LAYERS at 20 Hz
    assert m.sizes["feature"] == 3 * f1 + 3 * f1 * f2
    assert list(m.feature_order.values[: 3 * f1]) == [1] * 3 * f1 and set(m.feature_order.values[3 * f1:]) == {2}
    assert list(m.feature_channel.values[:f1]) == ["HHE"] * f1 and np.isnan(m.feature_f2.values[: 3 * f1]).all()
    assert m.attrs["config"]["components"] == 3 and m.attrs["joint"] is True
    model = Model.from_dataset(m, 1e-4)
    for key in STATIONS:
        res = xr.open_zarr(store, group=f"analysis/ica/{key}", consolidated=False).load()
        st = xr.open_zarr(store, group=key, consolidated=False)
        np.testing.assert_array_equal(res.time.values, st.time.values)
        assert res.components.dims == ("time", "component") and res.cluster.dtype == np.int32
        raw = raw_features(store, key, model)
        offset = 1e-4 * m.log_max.values[(m.feature_order.values == 2).astype(int)]
        x, valid = log_features(raw, offset)
        comps = (x - m["mean"].values) @ m.unmixing.values.T
        np.testing.assert_allclose(res.components.values[valid], comps[valid], rtol=1e-10, atol=1e-12)
        d = np.linalg.norm(comps[:, None] - m.centroids.values[None], axis=-1)
        np.testing.assert_array_equal(res.cluster.values[valid], d.argmin(1)[valid])
        np.testing.assert_allclose(res.distance.values[valid], d.min(1)[valid], rtol=1e-12)
        # Windows with NaN get no features: label -1, NaN components and distance, nothing else.
        assert (~valid).sum() == GAP.stop - GAP.start and not valid[GAP].any()
        assert (res.cluster.values[GAP] == -1).all() and np.isnan(res.components.values[GAP]).all()
        assert np.isnan(res.distance.values[GAP]).all() and np.isfinite(res.components.values[valid]).all()


def test_sample_is_seeded_spread_and_everything_when_fewer():
    assert [len(i) for i in sample_indices([10, 20], 100, 1)] == [10, 20]
    a = sample_indices([1000, 50, 3000], 600, 7)
    b = sample_indices([1000, 50, 3000], 600, 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert [len(x) for x in a] == [275, 50, 275]  # equal shares, what the small station lacks to the others
    gaps = np.diff(a[2])
    assert a[2].min() < 3000 / 275 and a[2].max() > 3000 - 3000 / 275 and gaps.max() < 2 * 3000 / 275


def test_log_floor_zero_non_positive_windows_get_no_features(tmp_path):
    path = make_store(tmp_path / "z.zarr", stations=["X9.A."], dtype="float64").path
    zero = zarr_set(path, "X9.A.", "order_1", 200, 0.0)
    summary = analyze(cfg_of(path, log_floor=0, sample=2000), log=lambda m: None)
    res = StoreReader(path).analysis("ica", "X9.A.").load()
    assert res.cluster.values[zero] == -1 and np.isnan(res.components.values[zero]).all()
    assert np.isfinite(res.components.values[res.cluster.values >= 0]).all()
    assert summary.cluster_sizes[-1] == GAP.stop - GAP.start + 1
    # With the default floor the same window has features.
    analyze(cfg_of(path, name="floored", sample=2000), log=lambda m: None)
    assert StoreReader(path).analysis("floored", "X9.A.").cluster.values[zero] >= 0


def zarr_set(path, key, name, k, value):
    """Set one coefficient of window ``k`` (test set-up through zarr itself)."""
    import zarr

    arr = zarr.open_group(path, mode="r+", use_consolidated=False)[key][name]
    arr[k, 0, 0] = value
    return k


def test_float32_noise_warning_with_plain_log(tmp_path, capsys, no_cluster):
    path = make_store(tmp_path / "n.zarr", stations=["X9.A."]).path
    import zarr

    arr = zarr.open_group(path, mode="r+", use_consolidated=False)["X9.A."]["order_2"]
    arr[:, 1, 2, 0] = arr[:, 1, 2, 0] * 1e-9  # one path far below float32 noise
    cfg = write_toml(tmp_path / "a.toml", path, log_floor=0)
    assert main(["analyze", str(cfg)]) == 0
    err = capsys.readouterr().err
    assert "warning: log_floor = 0 on a float32 store: 1 of 96 paths" in err, err


def test_standard_and_minmax_normalisation_are_exact_over_all_windows(store):
    analyze(cfg_of(store, name="std", normalize="standard", sample=300), log=lambda m: None)
    analyze(cfg_of(store, name="mm", normalize="minmax", sample=300), log=lambda m: None)
    reader = StoreReader(store)
    std, mm = reader.analysis("std").load(), reader.analysis("mm").load()
    model = Model.from_dataset(std, 1e-4)
    offset = model.offset()
    xs = []
    for key in STATIONS:
        x, valid = log_features(raw_features(store, key, model), offset)
        xs.append(x[valid])
    x = np.concatenate(xs)
    np.testing.assert_allclose(std.norm_shift.values, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std.norm_scale.values, x.std(0), rtol=1e-10)
    assert np.allclose(mm.log_max.values, std.log_max.values)  # same sample, same M
    np.testing.assert_allclose(mm.norm_shift.values, x.min(), rtol=1e-14)
    np.testing.assert_allclose(mm.norm_scale.values, x.max() - x.min(), rtol=1e-12)


def test_one_model_per_station(store, tmp_path):
    summary = analyze(cfg_of(store, joint=False, sample=500, components=2, clusters=2), log=lambda m: None)
    # Cluster 0 of X9.A. and cluster 0 of X9.B. are unrelated: sizes are given per model, never summed.
    sizes = {k: {c: int((StoreReader(store).analysis("ica", k).cluster.values == c).sum()) for c in (0, 1)}
             for k in STATIONS}
    assert ("cluster sizes per station model: X9.A. (0: {}, 1: {}); X9.B. (0: {}, 1: {})".format(
        sizes["X9.A."][0], sizes["X9.A."][1], sizes["X9.B."][0], sizes["X9.B."][1]) in summary.text())
    assert summary.cluster_sizes == {-1: 2 * (GAP.stop - GAP.start)}
    from scatflow.analysis.export import export_analysis
    import pandas as pd

    export_analysis(store, "ica", tmp_path / "l.csv")
    table = pd.read_csv(tmp_path / "l.csv")
    assert (table.model == table.station).all() and set(table.model) == set(STATIONS)
    reader = StoreReader(store)
    for key in STATIONS:
        res = reader.analysis("ica", key)
        assert reader.analysis_model("ica", key).unmixing.shape[0] == 2 and res.cluster.shape == (N,)
    assert "unmixing" not in reader.analysis("ica")
    assert set(reader.analysis_attrs("ica")["models"]) == set(STATIONS)


# -- incremental ------------------------------------------------------------------------------------
def test_grown_store_labels_only_new_windows_with_the_stored_model(tmp_path):
    small = make_store(tmp_path / "small.zarr", n=500).path
    big = make_store(tmp_path / "big.zarr", n=N).path  # the same first 500 windows, then more
    analyze(cfg_of(small, sample=10000), log=lambda m: None)
    shutil.copytree(f"{small}/analysis", f"{big}/analysis")  # big is small after it grew:
    for key in STATIONS:  # its first five blocks are small's, written then (the sixth was partial)
        zarr.open_group(big, path=key, mode="r+")["block_stamp"][:5] = zarr.open_group(small, path=key)["block_stamp"][:5]
    before = {k: StoreReader(big).analysis("ica", k).load() for k in STATIONS}
    model_before = StoreReader(big).analysis("ica").load()
    summary = analyze(cfg_of(big, sample=10000), log=lambda m: None)
    assert not summary.fitted
    # Only the last, partial chunk (500 = 5 x 90 + 50) and the new windows were labelled.
    assert summary.labelled_now == 2 * (N - 450)
    xr.testing.assert_identical(StoreReader(big).analysis("ica").load(), model_before)
    # Reference: the stored model applied to every window of the grown store.
    m = Model.from_dataset(model_before, 1e-4)
    for key in STATIONS:
        after = StoreReader(big).analysis("ica", key).load()
        assert after.sizes["time"] == N
        # Chunks before the old end are untouched (the partial one held other data in the small store).
        xr.testing.assert_identical(after.isel(time=slice(0, 450)).drop_dims("block"),
                                    before[key].isel(time=slice(0, 450)).drop_dims("block"))
        ref = m.apply(raw_features(big, key, m))
        np.testing.assert_array_equal(after.cluster.values, ref[:, -2].astype(int))
        # The new windows' times are the station's (from its grid, not left at the fill value).
        np.testing.assert_array_equal(after.time.values, xr.open_zarr(big, group=key, consolidated=False).time.values)
    # Nothing new: nothing labelled, except the partial last chunk (N = 10 x 90: none).
    assert analyze(cfg_of(big, sample=10000), log=lambda m: None).labelled_now == 0


def test_changed_config_refused_with_differences_then_refit(store, tmp_path, capsys, no_cluster):
    cfg = write_toml(tmp_path / "a.toml", store, sample=400)
    assert main(["analyze", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "analysis 'ica' (joint model, fitted now on a sample of 386 windows): 2 station(s), 1800 windows" in out
    assert "cluster sizes: 0: " in out and "ICA explained variance of the sample: joint " in out
    station_before = xr.open_zarr(store, group="X9.A.", consolidated=False).load()
    write_toml(cfg, store, sample=400, components=3)
    one_line_error(capsys, ["analyze", str(cfg), "--quiet"], "analysis 'ica' was written with another [analysis] config",
                   "components: store has 4, config has 3", "--refit")
    assert StoreReader(store).analysis("ica").sizes["component"] == 4  # nothing lost
    assert main(["analyze", str(cfg), "--refit", "--quiet"]) == 0
    assert StoreReader(store).analysis("ica").sizes["component"] == 3
    assert StoreReader(store).analysis("ica", "X9.A.").components.shape == (N, 3)
    xr.testing.assert_identical(xr.open_zarr(store, group="X9.A.", consolidated=False).load(), station_before)


# -- bad input ---------------------------------------------------------------------------------
def test_bad_input_one_line_each(store, tmp_path, capsys, no_cluster):
    cfg = tmp_path / "a.toml"
    one_line_error(capsys, ["analyze", str(write_toml(cfg, store, stations=["XX.*.*"])), "--quiet"],
                   "no station matches analysis.stations ['XX.*.*']", "X9.A., X9.B.")
    one_line_error(capsys, ["analyze", str(write_toml(cfg, store, components=97)), "--quiet"],
                   "'analysis.components' (97) is larger than the number of features (96)")
    one_line_error(capsys, ["analyze", str(write_toml(cfg, store, sample=3, components=5, clusters=2)), "--quiet"],
                   "'analysis.components' (5) is larger than the sample (3 windows with features)")
    one_line_error(capsys, ["analyze", str(write_toml(cfg, store, normalize="zscore")), "--quiet"],
                   "'analysis.normalize' must be none, minmax or standard")
    one_line_error(capsys, ["analyze", str(write_toml(cfg, store, match="band")), "--quiet"],
                   "'analysis.match' must be code or component, got 'band'")
    one_line_error(capsys, ["analyze", str(write_toml(cfg, store)), "--explore", "x"], "--explore")
    one_line_error(capsys, ["analyze", str(write_toml(cfg, store)), "--explore", "5:2"],
                   "--explore: the range 5:2 must be increasing")
    one_line_error(capsys, ["analyze", str(write_toml(cfg, tmp_path / "none.zarr"))], "no such store")
    assert StoreReader(store).analysis_names() == []  # nothing written by a refused analysis


def test_joint_model_refuses_different_frequencies_naming_them(tmp_path, capsys, monkeypatch):
    path = tmp_path / "mixed.zarr"
    make_store(path, stations=["X9.A."])
    write_store(path, ["X9.C."], N, layers=SMALL_LAYERS, sampling_rate=40.0, block_windows=CHUNK)
    cfg = write_toml(tmp_path / "a.toml", path)

    def no_cluster_allowed(cfg, log=print):
        raise AssertionError("a cluster was started before the bad input was refused")

    monkeypatch.setattr(clustermod, "connect", no_cluster_allowed)
    one_line_error(capsys, ["analyze", str(cfg), "--quiet"], "stations X9.A. and X9.C. have different frequencies (f1, f2)")
    monkeypatch.setattr(clustermod, "connect", lambda cfg, log=print: contextlib.nullcontext())
    assert main(["analyze", str(write_toml(cfg, path, joint=False, sample=500)), "--quiet"]) == 0


def test_station_without_usable_window_is_skipped_with_reason(tmp_path, capsys, no_cluster):
    path = tmp_path / "dead.zarr"
    make_store(path, stations=["X9.A."])
    make_store(path, stations=["X9.D."], nan_windows=slice(0, N))
    cfg = write_toml(tmp_path / "a.toml", path, sample=500)
    assert main(["analyze", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "skipped X9.D.: no usable window (none of its 900 windows has coefficients on every channel)" in out
    assert StoreReader(path).analysis_stations("ica") == ["X9.A."]
    one_line_error(capsys, ["analyze", str(write_toml(cfg, path, name="d", stations=["X9.D.*"])), "--quiet"],
                   "no station has a usable window", "X9.D.: no usable window")


# -- the other commands on a store with an analysis -----------------------------------------------
def test_info_plot_export_and_explore(store, tmp_path, capsys, no_cluster):
    cfg = write_toml(tmp_path / "a.toml", store, sample=400, components=3, clusters=3)
    assert main(["analyze", str(cfg), "--explore", "2:4", "-o", str(tmp_path / "ex.png")]) == 0
    out = capsys.readouterr().out
    assert "explained variance of the reconstruction: 2: " in out and "4: " in out
    assert (tmp_path / "ex.png").read_bytes()[:8] == PNG
    assert StoreReader(store).analysis_names() == []  # explore writes nothing to the store
    assert main(["analyze", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", store]) == 0
    out = capsys.readouterr().out
    assert "stations:   2 (X9.A., X9.B.)" in out and "not a scatflow station group" not in out
    assert "analyses:   ica: joint model, 3 components, 3 clusters; fitted " in out
    assert "stations X9.A., X9.B." in out.split("analyses:", 1)[1].splitlines()[0]
    assert main(["plot", store, "-o", str(tmp_path / "p.png")]) == 0  # the station plot still works
    assert main(["plot", store, "--analysis", "ica", "-o", str(tmp_path / "a.png")]) == 0
    for name in ("p.png", "a.png", "a.weights.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    capsys.readouterr()
    assert main(["export", store, "--analysis", "ica", "-o", str(tmp_path / "l.csv")]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "l.csv")
    assert list(table.columns) == ["station", "model", "start", "end", "cluster", "distance",
                                   "component_0", "component_1", "component_2"]
    assert set(table.model) == {"joint"}
    assert len(table) == 2 * N and table.start[0] == "2015-01-01T00:00:00.000Z" and table.end[0].endswith("00:40.000Z")
    res = StoreReader(store).analysis("ica", "X9.B.").load()
    np.testing.assert_array_equal(table[table.station == "X9.B."].cluster.values, res.cluster.values)
    one_line_error(capsys, ["export", store, "--analysis", "nope", "-o", str(tmp_path / "x.csv")],
                   "no analysis 'nope'; the store has: ica")
    assert main(["export", store, "--analysis", "ica", "-o", str(tmp_path / "x.parquet")]) == 0
    parquet = pd.read_parquet(tmp_path / "x.parquet")
    assert list(parquet.columns) == list(table.columns) and len(parquet) == 2 * N
    np.testing.assert_array_equal(parquet.cluster.values, table.cluster.values)
    # Parquet holds UTC timestamps (CSV: ISO strings of the same instants).
    assert str(parquet.start.dtype) == "datetime64[ns, UTC]"
    assert parquet.start[0] == pd.Timestamp("2015-01-01T00:00:00Z") and parquet.end[0] == pd.Timestamp("2015-01-01T00:00:40Z")
    assert (parquet.end == pd.to_datetime(table.end)).all()
    one_line_error(capsys, ["export", store, "--analysis", "ica", "-o", str(tmp_path / "x.xlsx")],
                   "x.xlsx: unknown output format '.xlsx'; export writes .csv or .parquet files")
    assert not (tmp_path / "x.xlsx").exists()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "pyarrow", None)  # as if it were not installed
        one_line_error(capsys, ["export", store, "--analysis", "ica", "-o", str(tmp_path / "y.parquet")],
                       "Parquet output needs pyarrow")


def test_a_run_still_plans_and_writes_a_store_with_an_analysis(tmp_path):
    """The planner and a block task see stations only; the analysis group survives a run."""
    import obspy

    from scatflow.workflow.plan import make_plan
    from scatflow.synthetic import write_day

    start = obspy.UTCDateTime("2015-12-04T00:00:00")
    day = tmp_path / "X9.SV13..HH.mseed"
    write_day(day, start=str(start), sampling_rate=20.0, duration_s=2 * 3600 + 0.05)

    def cfg(hours):
        return parse_config({
            "input": {"paths": [str(day)], "start": str(start)[:19], "end": str(start + hours * 3600)[:19]},
            "network": {"window_s": 40.0, "overlap": 0.5, "layers": SMALL_LAYERS},
            "output": {"store": str(tmp_path / "r.zarr"), "block_s": 1800.0},
            "analysis": {"sample": 1000, "components": 2, "clusters": 2}})

    def run(c):
        assert all(r.ok for r in run_in_process(c))
        return make_plan(c, Store(c.output["store"]))

    run(cfg(1))
    analyze(cfg(1), log=lambda m: None)
    plan = run(cfg(2))  # the later run: one station planned, the analysis group not a station
    assert [sp.key for sp in plan.stations] == ["X9.SV13."]
    assert StoreReader(tmp_path / "r.zarr").stations == ["X9.SV13."]
    summary = analyze(cfg(2), log=lambda m: None)
    assert not summary.fitted and summary.windows == 359


# -- analyses follow the store: labels of blocks written since ---------------------------------------
T0 = "2015-12-04T23:00:00"  # two hours across midnight: two SDS day files per channel


def two_hour_sds(root, gap=None):
    """Two hours of the synthetic day (20 Hz) across midnight as an SDS archive under ``root``,
    ``gap`` (s from the start, a pair) cut out; returns the day files of each day, by day."""
    import obspy

    from scatflow.synthetic import synthetic_day

    st = synthetic_day(start=T0, sampling_rate=20.0, duration_s=2 * 3600 + 0.05)
    t0 = obspy.UTCDateTime(T0)
    if gap:
        st = st.slice(endtime=t0 + gap[0]) + st.slice(starttime=t0 + gap[1])
    days = {}
    for day in (obspy.UTCDateTime("2015-12-04"), obspy.UTCDateTime("2015-12-05")):
        for tr in st.slice(day, day + 86400 - 0.01):
            s = tr.stats
            path = root / f"{day.year}/{s.network}/{s.station}/{s.channel}.D/{tr.id}.D.{day.year}.{day.julday:03d}"
            path.parent.mkdir(parents=True, exist_ok=True)
            st.select(id=tr.id).slice(day, day + 86400 - 0.01).write(str(path), format="MSEED")
            days.setdefault(day.julday, set()).add(path)
    return days


def two_hour_cfg(root, store):
    return parse_config({
        "input": {"sds": str(root), "start": T0, "end": "2015-12-05T01:00:00"},
        "network": {"window_s": 40.0, "overlap": 0.5, "layers": SMALL_LAYERS},
        "output": {"store": str(store), "block_s": 1800.0},
        "analysis": {"sample": 1000, "components": 2, "clusters": 3}})


def labels_of_a_fresh_store(tmp_path, updated, files_dir):
    """The analysis of a store computed in one go from ``files_dir``, labelled with ``updated``'s
    stored model (its analysis group copied over: no stamp matches, so every block is labelled)."""
    fresh = two_hour_cfg(files_dir, tmp_path / "fresh.zarr")
    run_in_process(fresh)
    shutil.copytree(f"{updated}/analysis", tmp_path / "fresh.zarr" / "analysis")
    summary = analyze(fresh, log=lambda m: None)
    assert not summary.fitted
    return {k: StoreReader(tmp_path / "fresh.zarr").analysis("ica", k).load().drop_vars("block_stamp", errors="ignore")
            for k in StoreReader(tmp_path / "fresh.zarr").analysis_stations("ica")}


def assert_labels_equal(store, ref):
    for key, want in ref.items():
        got = StoreReader(store).analysis("ica", key).load().drop_vars("block_stamp", errors="ignore")
        np.testing.assert_array_equal(got.cluster.values, want.cluster.values)
        xr.testing.assert_identical(got, want)


def test_late_data_in_a_labelled_chunk_is_labelled_on_the_next_analyze(tmp_path):
    """A 2-minute gap inside block 1 is filled by late data: the recomputed block is labelled again."""
    two_hour_sds(tmp_path / "sds", gap=(2000, 2120))
    cfg = two_hour_cfg(tmp_path / "sds", tmp_path / "s.zarr")
    assert all(r.ok for r in run_in_process(cfg))
    analyze(cfg, log=lambda m: None)
    before = StoreReader(cfg.output["store"]).analysis("ica", "X9.SV13.").cluster.values
    assert (before[90:180] == -1).sum() >= 6 and (before[90:180] != -1).any()  # a chunk partly labelled
    two_hour_sds(tmp_path / "sds")  # the late data: the day files rewritten whole
    again = [r.block for r in run_in_process(cfg)]
    assert 1 in again
    summary = analyze(cfg, log=lambda m: None)
    assert summary.labelled_now == sum(min(90, 359 - 90 * b) for b in again)
    assert summary.cluster_sizes.get(-1, 0) == 0
    assert_labels_equal(cfg.output["store"], labels_of_a_fresh_store(tmp_path, cfg.output["store"], tmp_path / "sds"))


def test_failed_recompute_leaves_nan_and_no_labels(tmp_path):
    """The second day's HHZ file is rewritten unreadable: blocks reading it fail on the recompute, and
    neither the store nor the analysis keeps their earlier numbers."""
    days = two_hour_sds(tmp_path / "sds")
    cfg = two_hour_cfg(tmp_path / "sds", tmp_path / "s.zarr")
    assert all(r.ok for r in run_in_process(cfg))
    analyze(cfg, log=lambda m: None)
    next(p for p in days[339] if p.name.startswith("X9.SV13..HHZ")).write_bytes(b"garbage" * 1000)
    failed = [r.block for r in run_in_process(cfg) if r.error]
    assert failed == [1, 2, 3]  # block 1's last windows end after midnight
    ds = xr.open_zarr(cfg.output["store"], group="X9.SV13.")  # plain xarray: NaN, coverage 0
    assert np.isnan(ds.order_1.values[90:]).all() and np.isnan(ds.order_2.values[90:]).all()
    assert (ds.coverage.values[90:] == 0).all() and np.isfinite(ds.order_1.values[:90]).all()
    summary = analyze(cfg, log=lambda m: None)
    assert summary.labelled_now == 269
    res = StoreReader(cfg.output["store"]).analysis("ica", "X9.SV13.")
    assert (res.cluster.values[90:] == -1).all() and (res.cluster.values[:90] >= 0).all()
    assert np.isnan(res.components.values[90:]).all()
    assert_labels_equal(cfg.output["store"], labels_of_a_fresh_store(tmp_path, cfg.output["store"], tmp_path / "sds"))


def test_blocks_not_complete_are_neither_analysed_nor_plotted(tmp_path):
    """A failed block of a store written before failures cleared their data still holds its old
    numbers: the ledger, not the values, decides (cluster -1, NaN in the plot's data)."""
    from scatflow.plot import plot_store

    path = make_store(tmp_path / "s.zarr", nan_windows=None).path
    g = zarr.open_group(path, path="X9.A.", mode="r+")
    g["block_done"][2], g["block_error"][2] = 0, "X9.A..HHZ: not a readable waveform file"
    assert np.isfinite(xr.open_zarr(path, group="X9.A.").order_1.values[180:270]).all()  # old numbers left
    summary = analyze(cfg_of(path, sample=10000), log=lambda m: None)
    assert summary.sample == 2 * N - CHUNK  # not fitted on
    cluster = StoreReader(path).analysis("ica", "X9.A.").cluster.values
    assert (cluster[180:270] == -1).all() and (cluster[:180] >= 0).all() and (cluster[270:] >= 0).all()
    ds = StoreReader(path).dataset("X9.A.", ledger=True)
    assert np.isnan(ds.order_2.values[180:270]).all() and np.isfinite(ds.order_2.values[:180]).all()
    assert plot_store(path, output=tmp_path / "p.png", station="X9.A.").endswith("p.png")


def test_joint_model_across_band_codes_with_match_component(tmp_path, capsys, no_cluster):
    """A BH? and an HH? station on one frequency axis share one model when matched by component;
    by code they are refused, naming the way out; two channels of one component are refused."""
    path = make_store(tmp_path / "s.zarr", stations=["X9.A."]).path
    make_store(tmp_path / "bh.zarr", stations=["X9.B."], channels=("BHE", "BHN", "BHZ"))
    shutil.copytree(tmp_path / "bh.zarr" / "X9.B.", f"{path}/X9.B.")
    one_line_error(capsys, ["analyze", str(write_toml(tmp_path / "c.toml", path)), "--quiet"],
                   "station X9.A. lacks channel(s) BHE, BHN, BHZ", "analysis.match = 'component'")
    assert main(["analyze", str(write_toml(tmp_path / "m.toml", path, match="component", sample=2000)),
                 "--quiet"]) == 0
    m = StoreReader(path).analysis("ica")
    assert list(dict.fromkeys(str(c) for c in m.feature_channel.values)) == ["E", "N", "Z"]
    assert m.feature_channel.attrs["match"] == "component"
    # The BH? station's features are its BHE, BHN, BHZ values at the model's E, N, Z.
    model = Model.from_dataset(m.load(), 1e-4)
    ds = xr.open_zarr(path, group="X9.B.").load()
    ref = model.apply(np.hstack([ds.order_1.values.reshape(N, -1), ds.order_2.values.reshape(N, -1)]))
    np.testing.assert_array_equal(StoreReader(path).analysis("ica", "X9.B.").cluster.values, ref[:, -2])
    make_store(tmp_path / "two.zarr", stations=["X9.C."], channels=("HHZ", "LHZ", "HHN"))
    one_line_error(capsys, ["analyze", str(write_toml(tmp_path / "t.toml", tmp_path / "two.zarr", match="component")),
                    "--quiet"], "station X9.C. has several channels of one component (X9.C..HHZ, X9.C..LHZ)")


@pytest.mark.slow
def test_example_archive_analyses_its_three_stations_out_of_the_box(tmp_path, capsys, no_cluster):
    """`scatflow example DIR --archive`, run, analyze (the README's commands) on its first hour: the
    20 Hz BH? station, resampled to 50 Hz, shares the joint model with the HH? stations."""
    from scatflow.config import load_config

    assert main(["example", str(tmp_path), "--archive", "--days", "2", "--quiet"]) == 0
    toml = tmp_path / "archive.toml"
    toml.write_text(re.sub(r'^end = ".*"$', 'end = "2015-12-04T01:00:00"', toml.read_text(), flags=re.M))
    assert all(r.ok for r in run_in_process(load_config(toml)))
    capsys.readouterr()
    assert main(["analyze", str(toml), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "3 station(s), 537 windows" in out, out
    reader = StoreReader(tmp_path / "archive.zarr")
    assert reader.analysis_stations("ica") == ["X9.SV13.", "X9.SV15.", "X9.SV20.00"]
    assert reader.analysis("ica").feature_channel.attrs["match"] == "component"


def test_analyze_during_a_run_is_refused_before_any_cluster_starts(store, tmp_path, capsys, monkeypatch):
    """The run's writer lock is checked first; the message names the `scatflow run` holding it."""
    import os
    import socket

    from scatflow.store.lock import writer_lock

    def no_cluster_allowed(cfg, log=print):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(clustermod, "connect", no_cluster_allowed)
    with writer_lock(store, command="run"):
        line = one_line_error(capsys, ["analyze", str(write_toml(tmp_path / "a.toml", store)), "--quiet"],
                              "is being written by scatflow run (host", f"pid {os.getpid()}", "when it has finished")
    assert "another" not in line and socket.gethostname() in line


def test_occurrence_rate_breaks_at_windows_without_label():
    from scatflow.analysis.plot import occurrence_rate

    labels = np.array([0] * 10 + [-1] * 10 + [1] * 10)
    rate = occurrence_rate(labels, 2, 5)
    assert np.isnan(rate[10:20]).all()  # a gap is a gap, not a rate of 0
    np.testing.assert_array_equal(rate[:10, 0], 1.0)  # next to the gap: over the labelled windows only
    np.testing.assert_array_equal(rate[20:, 1], 1.0)
    np.testing.assert_allclose(rate[~np.isnan(rate[:, 0])].sum(axis=1), 1.0)
