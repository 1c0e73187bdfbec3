"""Preprocessing through real runs on a synthetic SDS archive with its StationXML: results independent
of how the span is split into runs (bitwise), agreement with the continuous record, one frequency
axis for all stations, coordinates and units, responses as block inputs, and eventual equality."""

import json

import numpy as np
import obspy
import pytest
import zarr
from helpers import SMALL_LAYERS, assert_same_store, write_config

import scatflow
from scatflow.cli import main
from scatflow.errors import StoreError
from scatflow.scattering.network import ScatteringNetwork
from scatflow.inputs.preprocess import Preprocess, ratio
from scatflow.synthetic import station_inventory, write_archive, write_inventory

pytestmark = pytest.mark.slow  # real Dask clusters

DAY = 86400
START = obspy.UTCDateTime("2015-12-04")
GROUPS = ("X9.SV13.", "X9.SV15.", "X9.SV20.00")
STATIONS = {"X9.SV13.": {"sampling_rate": 50.0, "channels": ["X9.SV13..HHZ"]},
            "X9.SV15.": {"sampling_rate": 50.0, "channels": ["X9.SV15..HHZ"]},
            "X9.SV20.00": {"sampling_rate": 20.0, "channels": ["X9.SV20.00.BHZ"]}}
PREPROCESS = """inventory = ["{inventory}"]
response = "velocity"
pre_filt = [0.2, 0.5, 8.0, 9.5]
filter = {{ type = "highpass", freq = 1.0, corners = 4, zerophase = true }}
sampling_rate = 50.0"""


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Three days (SV15's HHZ has a 5-minute gap and SV20 (20 Hz) no files on the middle day)."""
    root = tmp_path_factory.mktemp("pre") / "archive"
    info = write_archive(root, start=str(START.date), days=3)
    write_inventory(root / "stations.xml", STATIONS, start="2015-01-01")
    return root, info


def config(path, root, store, days=(0, 3), preprocess=None, inventory="stations.xml", **kw):
    body = PREPROCESS.format(inventory=root / inventory) if preprocess is None else preprocess
    return write_config(path, sds=root, select=("X9.*.*.?HZ",), store=store, start=str(START + days[0] * DAY)[:19],
                        end=str(START + days[1] * DAY)[:19], layers=SMALL_LAYERS, workers=2, preprocess=body, **kw)


def run(cfg, capsys, *extra):
    code = main(["run", str(cfg), "--quiet", *extra])
    return code, capsys.readouterr()


def reference_windows(root, seed_id, t0, t1, pre, inv, first, count):
    """Windows ``first .. first+count-1`` (40 s, hop 20 s, on the grid from ``START``) of the same
    operations applied to the continuous record ``[t0, t1)``: remove_response with the taper that
    scatflow uses (half the pad at each end), the filter, resample_poly."""
    from obspy.clients.filesystem.sds import Client
    from scipy.signal import resample_poly

    net, sta, loc, cha = seed_id.split(".")
    tr = Client(str(root)).get_waveforms(net, sta, loc, cha, t0, t1 - 1e-3)[0]
    tr.data = tr.data.astype(np.float64)
    rate = tr.stats.sampling_rate
    tr.remove_response(inventory=inv, output="VEL", pre_filt=pre.pre_filt, water_level=pre.water_level,
                       taper_fraction=min(1.0, pre.pad_s * rate / tr.stats.npts))
    opts = pre.filter_options
    tr.filter(opts.pop("type"), **opts)
    y = resample_poly(tr.data, *ratio(rate, 50.0, seed_id))
    k0 = int(round((t0 - START) * 50))  # the record's first sample on the 50 Hz grid
    starts = (first + np.arange(count)) * 1000 - k0
    return np.stack([y[s:s + 2000] for s in starts])[:, None, :]


def test_run_splitting_agreement_axes_coordinates_units(archive, tmp_path, capsys):
    root, info = archive
    one = config(tmp_path / "one.toml", root, tmp_path / "one.zarr")
    code, out = run(one, capsys, "--dry-run")
    assert code == 0 and "X9.SV20.00       1 ch @ 20 Hz -> 50 Hz" in out.out
    assert "pad 74 s each side of a block" in out.out  # twice the pre_filt window's 36.6 s transient, rounded up
    assert run(one, capsys)[0] == 0
    for day in range(3):
        assert run(config(tmp_path / f"d{day}.toml", root, tmp_path / "days.zarr", (day, day + 1)), capsys)[0] == 0
    assert_same_store(tmp_path / "one.zarr", tmp_path / "days.zarr", groups=GROUPS)  # bitwise, NaN included

    # Agreement with the continuous record, windows at least a pad inside the record and away from gaps.
    pre = Preprocess.from_section({"response": "velocity", "pre_filt": (0.2, 0.5, 8.0, 9.5), "water_level": 60.0,
                                   "filter": {"type": "highpass", "freq": 1.0, "corners": 4, "zerophase": True},
                                   "sampling_rate": 50.0})
    inv = station_inventory([(c, s["sampling_rate"]) for s in STATIONS.values() for c in s["channels"]])
    net = ScatteringNetwork(*SMALL_LAYERS, bins=2000, sampling_rate=50.0)
    margin = int(np.ceil(pre.pad_s / 20))  # windows
    cases = [("X9.SV13.", "X9.SV13..HHZ", START, START + 3 * DAY, margin, 3 * 4320 - 1 - 2 * margin - 2),
             ("X9.SV20.00", "X9.SV20.00.BHZ", START, START + DAY, margin, 4320 - 1 - 2 * margin - 2)]
    for group, seed_id, t0, t1, first, count in cases:
        pick = np.linspace(first, first + count - 1, 300).astype(int)
        ref = net.transform(reference_windows(root, seed_id, t0, t1, pre, inv, 0, 4320 * int((t1 - t0) / DAY) - 1)[pick],
                            reduce_type="median")
        ds = scatflow.open_results(tmp_path / "one.zarr")[group].to_dataset()
        for name, want in zip(("order_1", "order_2"), ref):
            got = ds[name].values[pick]
            assert np.isfinite(got).all()
            err = np.abs(got - want).max() / np.abs(want).max()
            assert err <= 1e-4, (group, name, err)

    # One rate, one frequency axis: the stations combine; coordinates and units from the inventory.
    ds = scatflow.open_results(tmp_path / "one.zarr", combine=True)
    assert list(ds["station"].values) == list(GROUPS) and list(ds["channel"].values) == ["Z"]
    assert list(ds["seed_id"].values[:, 0]) == ["X9.SV13..HHZ", "X9.SV15..HHZ", "X9.SV20.00.BHZ"]
    assert ds.sizes["f1"] == len(net.banks[0]) and ds.attrs["sampling_rate_hz"] == 50.0
    g = zarr.open_group(str(tmp_path / "one.zarr"), mode="r", use_consolidated=False)
    for group in GROUPS:
        assert g[group]["order_1"].attrs["units"] == "m/s" and g[group]["order_2"].attrs["units"] == "m/s"
    sv20 = scatflow.open_results(tmp_path / "one.zarr")["X9.SV20.00"].to_dataset()
    assert float(sv20["latitude"][0]) == 46.1418 and float(sv20["elevation"][0]) == 1530.0
    assert sv20["longitude"].attrs["units"] == "degrees_east"
    # The gap's edges: windows within the pad of SV15's gap have coverage < 1 and no coefficients.
    sv15 = scatflow.open_results(tmp_path / "one.zarr")["X9.SV15."].to_dataset()
    gap0, gap1 = (np.datetime64(obspy.UTCDateTime(info["gap"][k]).datetime, "ns") for k in ("start", "end"))
    near = ((sv15.time + np.timedelta64(40, "s") > gap0 - np.timedelta64(74, "s"))
            & (sv15.time < gap1 + np.timedelta64(74, "s"))).values
    assert (sv15["coverage"].values[near, 0] < 1).all() and np.isnan(sv15["order_1"].values[near]).all()
    assert (sv15["coverage"].values[~near, 0] == 1).sum() > 0.99 * (~near).sum()


def test_combining_stations_at_different_rates_is_refused(archive, tmp_path, capsys):
    root, _ = archive
    cfg = write_config(tmp_path / "raw.toml", sds=root, select=("X9.SV13.*.HHZ", "X9.SV20.*.BHZ"),
                       store=tmp_path / "raw.zarr", start=str(START)[:19], end=str(START + 3600)[:19],
                       layers=SMALL_LAYERS, workers=1)
    assert run(cfg, capsys)[0] == 0
    with pytest.raises(StoreError, match=r"stations X9.SV13. and X9.SV20.00 have different f1 axes .*"
                                         r"\[preprocess\] sampling_rate"):
        scatflow.open_results(tmp_path / "raw.zarr", combine=True)


def test_responses_are_inputs_missing_ones_fail_and_changes_are_refused(archive, tmp_path, capsys):
    root, _ = archive
    store = tmp_path / "r.zarr"
    partial = tmp_path / "partial.xml"
    write_inventory(partial, {k: v for k, v in STATIONS.items() if k != "X9.SV20.00"})
    cfg = config(tmp_path / "r.toml", root, store, (0, 1), inventory=partial)
    code, out = run(cfg, capsys)
    assert code == 1
    assert "failed X9.SV20.00 block 0: X9.SV20.00.BHZ: no usable response in preprocess.inventory at " \
           "2015-12-04T" in out.out
    # The inventory is fixed: the next run computes exactly the failed blocks.
    write_inventory(partial, STATIONS)
    code, out = run(cfg, capsys, "--dry-run")
    assert "X9.SV13.         1 ch @ 50 Hz, windows 0..4318" in out.out and "0 block(s) to compute" in out.out
    assert "4 block(s) to compute (4 failed)" in out.out
    assert run(cfg, capsys)[0] == 0

    # A corrected response of one channel recomputes that station's blocks only.
    inv = obspy.read_inventory(str(partial))
    resp = inv.select(station="SV13")[0][0][0].response
    resp.response_stages[0].stage_gain *= 2
    resp.recalculate_overall_sensitivity()
    inv.write(str(partial), format="STATIONXML")
    code, out = run(cfg, capsys, "--dry-run")
    lines = {line.split()[0]: line for line in out.out.splitlines() if line.startswith("  X9.")}
    assert "4 block(s) to compute (4 inputs changed)" in lines["X9.SV13."]
    assert "0 block(s) to compute" in lines["X9.SV15."] and "0 block(s) to compute" in lines["X9.SV20.00"]
    before = zarr.open_group(str(store), mode="r", use_consolidated=False)["X9.SV13."]["order_1"][:]
    assert run(cfg, capsys)[0] == 0
    after = zarr.open_group(str(store), mode="r", use_consolidated=False)["X9.SV13."]["order_1"][:]
    assert np.allclose(after[np.isfinite(after)], before[np.isfinite(before)] / 2, rtol=1e-6)  # half the velocity

    # Other settings on the same store: refused, the differences listed, nothing written.
    other = config(tmp_path / "o.toml", root, store, (0, 1), preprocess=PREPROCESS.format(inventory=partial)
                   .replace("freq = 1.0", "freq = 2.0"))
    code, out = run(other, capsys)
    assert code == 2
    line = out.err.strip().splitlines()[-1]
    assert "written with another design" in line and "preprocess: store has" in line and "'freq': 2.0" in line


def test_nightly_runs_with_preprocessing_end_equal_to_one_fresh_run(tmp_path, capsys):
    """The live-archive invariant with preprocessing on: late, partial and rewritten day files, an outage,
    and a station upgraded from 20 to 40 Hz (resampled like the rest, so not refused)."""
    from test_live_archive import deliver, final_archive

    final, live = tmp_path / "final", tmp_path / "live"
    final_archive(final)
    stations = {"X9.SV13.": {"sampling_rate": 50.0, "channels": [f"X9.SV13..HH{c}" for c in "ZNE"]},
                "X9.SV20.00": {"sampling_rate": 20.0, "channels": [f"X9.SV20.00.BH{c}" for c in "ZNE"]}}
    write_inventory(tmp_path / "st.xml", stations)

    def night(name, days, store="nightly.zarr"):
        return write_config(tmp_path / f"{name}.toml", sds=live, select=("X9.SV13.*.HHZ", "X9.SV20.*.BHZ"),
                            store=tmp_path / store, start=str(START)[:19], end=str(START + days * DAY)[:19],
                            layers=SMALL_LAYERS, workers=2, preprocess=PREPROCESS.format(inventory=tmp_path / "st.xml"))

    nights = [([("SV13", 338), ("SV20", 338), ("SV13", 339, START + DAY + 13 * 3600)], 2),
              ([("SV13", 339), ("SV20", 339), ("SV13", 340)], 3),
              ([("SV13", 341)], 4),
              ([("SV20", 341)], 4),
              ([("SV13", 342), ("SV20", 342)], 5)]
    for i, (deliveries, days) in enumerate(nights):
        for d in deliveries:
            deliver(final, live, d[0], d[1], *(d[2:]))
        code, out = run(night(f"n{i}", days), capsys)
        assert code == 0, (i, out.out)
    assert run(night("last", 5), capsys)[0] == 0
    assert run(night("fresh", 5, "fresh.zarr"), capsys)[0] == 0
    assert_same_store(tmp_path / "nightly.zarr", tmp_path / "fresh.zarr", groups=("X9.SV13.", "X9.SV20.00"))
    notes = [json.loads(str(n)) if str(n) else {} for n in
             zarr.open_group(str(tmp_path / "fresh.zarr"), mode="r", use_consolidated=False)
             ["X9.SV20.00"]["block_notes"][:]]
    assert not any("other_rates" in n for n in notes)  # 40 Hz resampled, not refused
