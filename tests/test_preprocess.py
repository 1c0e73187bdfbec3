"""Preprocessing units: settings, the pad, block-span processing against ObsPy/SciPy on the
continuous record, gaps, responses as inputs (no cluster; the archive tests are in
test_preprocess_archive.py)."""

import dataclasses

import numpy as np
import obspy
import pytest
from obspy import UTCDateTime
from scipy.signal import resample_poly

from scatflow.config import parse_config
from scatflow.errors import ConfigError, InputError
from scatflow.inputs.epochs import Responses
from scatflow.inputs.preprocess import Preprocess, default_pad, ratio
from scatflow.inputs.process import process
from scatflow.synthetic import station_inventory

T0 = UTCDateTime("2020-03-01T00:00:00")
ID = "XX.A..HHZ"
STEPS = {"response": "velocity", "pre_filt": (0.2, 0.5, 22.0, 24.0), "water_level": 60.0,
         "filter": {"type": "highpass", "freq": 1.0, "corners": 4, "zerophase": True}, "sampling_rate": 50.0}


def record(rate, seconds, seed=3, start=T0):
    """A long, red and white noise record in counts (a random walk plus noise, with bursts)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    x = np.cumsum(rng.standard_normal(n)) * 5 + rng.standard_normal(n) * 200
    x[n // 3: n // 3 + int(20 * rate)] += rng.standard_normal(int(20 * rate)) * 5000  # an event
    return obspy.Trace(x, header={"network": "XX", "station": "A", "channel": "HHZ", "sampling_rate": rate,
                                  "starttime": start})


def reference(tr, pre, inv):
    """The same ObsPy/SciPy operations on the continuous record (ObsPy's defaults otherwise)."""
    tr = tr.copy()
    tr.remove_response(inventory=inv, output="VEL", pre_filt=pre.pre_filt, water_level=pre.water_level)
    opts = pre.filter_options
    tr.filter(opts.pop("type"), **opts)
    up, down = ratio(tr.stats.sampling_rate, pre.sampling_rate, ID)
    return resample_poly(tr.data, up, down)


def preprocess(**kw):
    return Preprocess.from_section({**STEPS, **kw})


def test_settings_are_validated_with_the_key_named():
    def error(**pre):
        with pytest.raises(ConfigError) as exc:
            parse_config({"input": {"paths": ["x"]}, "network": {"layers": [{"octaves": 2, "resolution": 1,
                          "quality": 1}]}, "output": {"store": "s"}, "preprocess": pre}, source="run.toml")
        return str(exc.value)

    assert "'preprocess.response' = 'velocity' needs 'preprocess.inventory'" in error(response="velocity")
    assert "'preprocess.pre_filt' is required" in error(response="velocity", inventory=["a.xml"])
    assert "'preprocess.response' must be one of" in error(response="speed")
    assert "'preprocess.pre_filt' must be four increasing" in error(pre_filt=[1.0, 0.5, 2.0, 3.0])
    assert "needs type = highpass" in error(filter={"type": "notch", "freq": 1.0})
    assert "unknown key 'freqmax' for a highpass" in error(filter={"type": "highpass", "freq": 1.0, "freqmax": 2.0})
    assert "'preprocess.filter.freqmin' must be a positive" in error(filter={"type": "bandpass", "freqmax": 2.0})
    assert "'preprocess.sampling_rate' must be a positive" in error(sampling_rate=-5)
    assert "'preprocess.filter' must be a table" in error(filter="highpass")
    for msg in (error(response="velocity"), error(sampling_rate=0)):
        assert msg.startswith("run.toml: ") and "\n" not in msg


_PROCESS = """
import obspy
from scatflow.inputs.process import process
from scatflow.synthetic import station_inventory
from test_preprocess import ID, T0, preprocess, record

for raw in (100.0, 40.0, 20.0):
    tr = record(raw, 2 * 3600)
    pre = preprocess(pre_filt=(0.2, 0.5, 0.4 * raw, 0.475 * raw))
    got = process(obspy.Stream([tr]), [ID], T0.ns, T0.ns + 1800 * 10**9, 1800 * 50, 50.0, pre,
                  station_inventory([(ID, raw)]))
    OUT[f"{raw:g} Hz"] = got.data
"""


def test_preprocessing_is_the_same_bits_with_and_without_avx512(tmp_path):
    """Response removal, filter and resampling give the same samples on AVX-512 and AVX2 nodes."""
    from helpers import bits_differing_without_avx512

    differ = bits_differing_without_avx512(tmp_path, _PROCESS)
    assert not differ, f"preprocessed samples differ with AVX-512 off: {differ}"


def test_resampling_ratios_and_the_bound():
    assert ratio(20.0, 50.0, ID) == (5, 2)
    assert ratio(100.0, 50.0, ID) == (1, 2)
    assert ratio(40.0, 50.0, ID) == (5, 4)
    with pytest.raises(InputError, match=r"XX.A..HHZ: cannot resample 49.9 Hz to 50 Hz .* up to 100"):
        ratio(49.9, 50.0, ID)


def test_the_default_pad_follows_the_slowest_step():
    assert Preprocess().pad_s == 0 and not Preprocess().active
    assert Preprocess.from_section({"inventory": ["x.xml"]}).pad_ns == 0  # coordinates only: samples unchanged
    slow, fast = preprocess(pre_filt=(0.05, 0.1, 22.0, 24.0)), preprocess()
    assert slow.pad_s > fast.pad_s >= 20
    assert preprocess(pad_s=7).pad_s == 7
    only_resample = Preprocess.from_section({"sampling_rate": 50.0})
    assert default_pad(only_resample) == 20.0  # resample_poly's filter: at most 10 s, doubled


@pytest.mark.parametrize("raw", [100.0, 20.0, 40.0])
def test_block_spans_agree_with_the_continuous_record(raw):
    """Every processed block span agrees with the operations applied to the whole record (far from its
    ends), and depends only on its span: the same block from a shorter read is bitwise the same."""
    tr = record(raw, 3 * 3600)
    inv = station_inventory([(ID, raw)])
    # pre_filt ends below the input's Nyquist frequency: at Nyquist, remove_response's result depends
    # on its FFT length, so no piece of a record can agree with the whole there (see the README).
    pre = preprocess(pre_filt=(0.2, 0.5, 0.4 * raw, 0.475 * raw))
    ref = reference(tr, pre, inv)
    origin = T0.ns
    for start_s, length_s in ((3600, 1800), (3600 + 1800, 1800), (4000, 60)):
        start = origin + start_s * 10**9
        got = process(obspy.Stream([tr]), [ID], origin, start, length_s * 50, 50.0, pre, inv)
        want = ref[start_s * 50:(start_s + length_s) * 50]
        assert got.recorded.all()
        assert np.abs(got.data[0] - want).max() <= 1e-6 * np.abs(want).max(), (raw, start_s)
        margin = int(pre.pad_s + 2) * 10**9
        cut = tr.slice(UTCDateTime(ns=start - margin), UTCDateTime(ns=start + length_s * 10**9 + margin))
        again = process(obspy.Stream([cut]), [ID], origin, start, length_s * 50, 50.0, pre, inv)
        assert again.data.tobytes() == got.data.tobytes()


@pytest.mark.parametrize("water_level", [60.0, None])
def test_a_response_is_evaluated_once_per_fft_length_with_obspys_bits_and_notes(monkeypatch, water_level):
    """evalresp, the pre_filt taper and the inversion (most of a block's preprocessing time and
    memory) are made once per process for each response and FFT length; every block still gets the
    bits and the notes of ObsPy's own remove_response, whichever block came first."""
    import warnings

    from obspy.core.inventory.response import Response

    from scatflow.inputs import deconvolve
    from scatflow.inputs import process as process_module

    tr = record(50.0, 3 * 3600)
    inv = station_inventory([(ID, 50.0)])
    pre = preprocess(pre_filt=(0.2, 0.5, 20.0, 24.0), water_level=water_level)
    calls, original = [], Response.get_evalresp_response

    def counted(self, *args, **kwargs):
        calls.append(args[:2])
        warnings.warn("evalresp: a stage's gain is guessed")  # recorded in each block's notes
        return original(self, *args, **kwargs)

    def obspys(tr, response, digest, output, pre_filt, water_level, frac):
        tr.stats.response = response
        tr.remove_response(output=output, pre_filt=pre_filt, water_level=water_level, zero_mean=True,
                           taper=True, taper_fraction=frac)

    monkeypatch.setattr(Response, "get_evalresp_response", counted)
    deconvolve.clear()

    def blocks():
        responses = Responses(pre, inv)  # a worker's, kept across its blocks
        return [process(obspy.Stream([tr]), [ID], T0.ns, T0.ns + s * 10**9, 1800 * 50, 50.0, pre, inv, responses)
                for s in (3600, 5400, 3600)]

    kept = blocks()
    assert len(calls) == 1  # three blocks of one length: one evaluation
    monkeypatch.setattr(process_module, "remove_response", obspys)
    fresh = blocks()
    assert len(calls) == 4
    for a, b in zip(kept, fresh):
        assert a.recorded.all()
        assert a.data.tobytes() == b.data.tobytes()
        assert a.notes == b.notes == [f"{ID}: evalresp: a stage's gain is guessed"]
    deconvolve.clear()


def test_gap_edges_are_not_recorded_within_the_pad():
    tr = record(100.0, 2 * 3600)
    inv = station_inventory([(ID, 100.0)])
    pre = preprocess()
    gap = (T0 + 3600, T0 + 3600 + 30)
    st = obspy.Stream([tr.slice(T0, gap[0] - 0.01), tr.slice(gap[1], T0 + 2 * 3600)])
    start = T0.ns + 1800 * 10**9
    got = process(st, [ID], T0.ns, start, 3600 * 50, 50.0, pre, inv)
    t = start + np.arange(3600 * 50) * 20_000_000
    edge_lo, edge_hi = gap[0].ns, gap[1].ns
    masked = (t >= edge_lo - pre.pad_ns - 20_000_000) & (t < edge_hi + pre.pad_ns + 20_000_000)
    assert not got.recorded[0, (t >= edge_lo - pre.pad_ns + 20_000_000) & (t < edge_hi + pre.pad_ns)].any()
    assert got.recorded[0, ~masked].all()
    # Away from the gap each side is its own continuous record.
    left = reference(tr.slice(T0, gap[0] - 0.01), pre, inv)
    far = t < edge_lo - 600 * 10**9
    idx = ((t[far] - T0.ns) // 20_000_000).astype(int)
    assert np.abs(got.data[0, far] - left[idx]).max() <= 1e-6 * np.abs(left[idx]).max()


def test_a_missing_response_names_the_channel_and_the_time():
    tr = record(100.0, 1800)
    inv = station_inventory([("XX.B..HHZ", 100.0)])
    with pytest.raises(InputError, match=r"^XX.A..HHZ: no usable response in preprocess.inventory at 2020-03-01T"):
        process(obspy.Stream([tr]), [ID], T0.ns, T0.ns + 600 * 10**9, 600 * 50, 50.0, preprocess(), inv)


def test_response_records_change_with_the_response_not_with_the_epoch_end():
    pre = preprocess()
    inv = station_inventory([(ID, 100.0)], start="2019-01-01")
    span = (T0.ns, T0.ns + 3600 * 10**9)
    base = Responses(pre, inv).records([ID], *span)
    assert base[0]["path"] == f"response:{ID}" and len(base[0]["digest"]) == 16
    extended = inv.copy()
    extended[0][0][0].end_date = UTCDateTime("2030-01-01")
    assert Responses(pre, extended).records([ID], *span) == base
    corrected = inv.copy()
    corrected[0][0][0].response.response_stages[0].stage_gain *= 2
    corrected[0][0][0].response.recalculate_overall_sensitivity()
    assert Responses(pre, corrected).records([ID], *span) != base
    assert Responses(dataclasses.replace(pre, response="none"), inv).records([ID], *span) == []


def test_the_example_inventory_reads_back(tmp_path):
    from scatflow.inputs.inventory import coordinates, load_inventory, units
    from scatflow.synthetic import write_inventory

    path = write_inventory(tmp_path / "st.xml", {"X9.SV13.": {"sampling_rate": 50.0, "channels": ["X9.SV13..HHZ"]}})
    inv = load_inventory([str(path)])
    assert coordinates(inv, "X9.SV13..HHZ", T0.ns) == {"latitude": 46.152, "longitude": 7.451,
                                                       "elevation": 1420.0, "depth": 0.0}
    assert np.isnan(coordinates(inv, "X9.SV99..HHZ", T0.ns)["latitude"])
    assert units(Preprocess.from_section({"response": "sensitivity", "inventory": [str(path)]}), inv,
                 ["X9.SV13..HHZ"], T0.ns) == "m/s"
    assert units(preprocess(response="acceleration"), inv, ["X9.SV13..HHZ"], T0.ns) == "m/s**2"
    bad = tmp_path / "bad.xml"
    bad.write_text("<FDSNStationXML>")
    with pytest.raises(InputError, match=r"bad.xml: cannot read StationXML"):
        load_inventory([str(bad)])
    with pytest.raises(InputError, match=r"preprocess.inventory: no file matches .*none\*.xml"):
        load_inventory([str(tmp_path / "none*.xml")])


def test_a_bad_inventory_is_one_line_before_anything_runs(tmp_path, capsys):
    from helpers import one_line_error, write_config

    tr = record(50.0, 600)
    tr.stats.station, tr.data = "A", tr.data.astype(np.int32)
    tr.write(str(tmp_path / "a.mseed"), format="MSEED")
    (tmp_path / "bad.xml").write_text("<FDSNStationXML>")
    body = 'inventory = ["{}"]\nresponse = "sensitivity"'
    cfg = write_config(tmp_path / "run.toml", paths=[tmp_path / "a.mseed"], store=tmp_path / "s.zarr",
                       preprocess=body.format(tmp_path / "bad.xml"))
    one_line_error(capsys, cfg, "bad.xml: cannot read StationXML")
    cfg = write_config(tmp_path / "run.toml", paths=[tmp_path / "a.mseed"], store=tmp_path / "s.zarr",
                       preprocess=body.format(tmp_path / "none*.xml"))
    one_line_error(capsys, cfg, "preprocess.inventory: no file matches")
    cfg = write_config(tmp_path / "run.toml", paths=[tmp_path / "a.mseed"], store=tmp_path / "s.zarr",
                       preprocess='response = "velocity"')
    one_line_error(capsys, cfg, "'preprocess.response' = 'velocity' needs 'preprocess.inventory'")
    assert not (tmp_path / "s.zarr").exists()


def in_process_run(tmp_path, store, hours, **pre):
    """Run ``tmp_path/a.mseed`` into ``store`` over ``hours`` from T0 (blocks of 30 min, a small
    network, ``[preprocess]`` = ``pre``), every block computed in this process; the station's group."""
    import xarray as xr

    from scatflow.config import parse_config
    from scatflow.workflow.plan import make_plan
    from scatflow.workflow.run import execute_here, prepare_store
    from scatflow.store.writer import Store

    cfg = parse_config({"input": {"paths": [str(tmp_path / "a.mseed")], "start": str(T0)[:19],
                                  "end": str(T0 + hours * 3600)[:19]},
                        "network": {"layers": [{"octaves": 3, "resolution": 1, "quality": 1}]},
                        "output": {"store": str(store), "block_s": 1800.0, "dtype": "float64"}, "preprocess": pre})
    st = Store(cfg.output["store"])
    plan = make_plan(cfg, st)
    st.open_or_create(plan.design.record())
    prepare_store(plan, st)
    assert all(r.ok for r in execute_here(plan))
    return xr.open_zarr(store, group="XX.A.", consolidated=False).load()


def write_record(tmp_path, hours=3):
    tr = record(50.0, hours * 3600)
    tr.data = tr.data.astype(np.int32)
    tr.write(str(tmp_path / "a.mseed"), format="MSEED")


def test_a_partial_last_block_already_holds_its_final_values(tmp_path):
    """With preprocessing a block processes its whole chunk's samples even while it is partial, so the
    windows it holds are bitwise those it will hold once complete (the data being the same)."""
    write_record(tmp_path)
    pre = {"filter": {"type": "highpass", "freq": 1.0, "corners": 4, "zerophase": True}}
    partial = in_process_run(tmp_path, tmp_path / "p.zarr", 0.75, **pre)  # block 1 holds 44 of 90 windows
    full = in_process_run(tmp_path, tmp_path / "f.zarr", 2, **pre)
    n = partial.sizes["time"]
    assert n == 134 and np.isfinite(partial["order_1"].values[1:]).all()  # window 0: within the pad of the start
    for name in ("order_1", "coverage"):
        assert partial[name].values.tobytes() == full[name].values[:n].tobytes(), name


def test_an_inventory_given_later_adds_coordinates_that_extensions_keep(tmp_path):
    """A store created without an inventory gets the channel coordinates when a later run gives one,
    and they stay coordinates when the store grows again (blocks computed in this process)."""
    from scatflow.synthetic import write_inventory

    write_record(tmp_path)
    write_inventory(tmp_path / "st.xml", {"XX.A.": {"sampling_rate": 50.0, "channels": [ID]}})
    store = tmp_path / "s.zarr"
    assert "latitude" not in in_process_run(tmp_path, store, 1).coords
    ds = in_process_run(tmp_path, store, 2, inventory=[str(tmp_path / "st.xml")])
    assert float(ds["latitude"][0]) == 0.0 and ds["latitude"].attrs["units"] == "degrees_north"
    assert ds.sizes["time"] == 359 and ds["order_1"].attrs.get("units") is None  # attributes stay as created
    ds = in_process_run(tmp_path, store, 3)
    assert {"latitude", "longitude", "elevation", "depth"} <= set(ds.coords) and ds.sizes["time"] == 539
