"""Responses by epoch on an ObsPy-made SDS archive with a multi-epoch StationXML (blocks computed
in this process, real stores): each sample corrected with the response in force at its time, the
processing cut where the response changes, nothing lost where it does not, and block records that
recompute exactly the blocks an inventory change touches."""

import warnings

import numpy as np
import obspy
import pytest
from helpers import SMALL_LAYERS, epoch_inventory, load_group, run_blocks_in_process, write_sds_traces

from scatflow.config import parse_config
from scatflow.workflow.plan import make_plan
from scatflow.inputs.epochs import Responses
from scatflow.inputs.preprocess import Preprocess
from scatflow.inputs.process import process
from scatflow.store.writer import Store

T0 = obspy.UTCDateTime("2020-03-01T00:00:00")
ID = "XX.EP..HHZ"
RATE = 50.0
HOURS = 3
PRE = {"response": "velocity", "pre_filt": [0.2, 0.5, 20.0, 24.0],
       "filter": {"type": "highpass", "freq": 1.0, "corners": 4, "zerophase": True}}
PAD = Preprocess.from_section({**PRE, "pre_filt": tuple(PRE["pre_filt"])}).pad_s  # 74 s
WINDOW, HOP = 40.0, 20.0


def counts(seed=7):
    """Three hours of red and white noise with an event, in integer counts."""
    rng = np.random.default_rng(seed)
    n = int(HOURS * 3600 * RATE)
    x = np.cumsum(rng.standard_normal(n)) * 5 + rng.standard_normal(n) * 200
    x[n // 2: n // 2 + 1000] += rng.standard_normal(1000) * 5000
    return np.round(x).astype(np.int32)


def archive(root, gain_after=None, gap_before=None):
    """An SDS archive of :func:`counts`, multiplied by ``gain`` from ``t`` on (``gain_after = (t, gain)``),
    without the samples of ``gap_before = (t0, t1)`` (the data resume exactly at ``t1``)."""
    x = counts().astype(np.int64)
    if gain_after is not None:
        x[int(round((gain_after[0] - T0) * RATE)):] *= gain_after[1]
    header = {"network": "XX", "station": "EP", "location": "", "channel": "HHZ", "sampling_rate": RATE}
    if gap_before is None:
        pieces = [(0, len(x))]
    else:
        i0, i1 = (int(round((g - T0) * RATE)) for g in gap_before)
        pieces = [(0, i0), (i1, len(x))]
    traces = [obspy.Trace(x[a:b].astype(np.int32), header=dict(header, starttime=T0 + a / RATE)) for a, b in pieces]
    return write_sds_traces(root, traces)


def config(root, store, inventory):
    return {"input": {"sds": str(root), "start": str(T0)[:19], "end": str(T0 + HOURS * 3600)[:19]},
            "network": {"layers": SMALL_LAYERS, "window_s": WINDOW, "overlap": 0.5},
            "output": {"store": str(store), "block_s": 1800.0, "dtype": "float64"},
            "preprocess": {**PRE, "inventory": [str(inventory)]}}


def computed(tmp_path, name, epochs, gain_after=None, gap_before=None):
    """The station group of a store computed over the archive with the inventory of ``epochs``."""
    root = archive(tmp_path / f"{name}-sds", gain_after, gap_before)
    inv = tmp_path / f"{name}.xml"
    epoch_inventory(ID, RATE, epochs).write(str(inv), format="STATIONXML")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_blocks_in_process(config(root, tmp_path / f"{name}.zarr", inv))
    raw = [str(w.message) for w in caught if "obspy" in w.filename or "scipy" in w.filename]
    assert not raw, f"raw warnings reached the console: {raw}"
    return load_group(tmp_path / f"{name}.zarr", "XX.EP.")


def far_from(ds, t) -> np.ndarray:
    """Windows whose read span (the window and a pad each side) does not reach the instant ``t``."""
    start = (ds.time.values - np.datetime64(T0.datetime, "ns")) / np.timedelta64(1, "s")
    c = t - T0
    return (start + WINDOW + PAD <= c) | (start - PAD >= c)


@pytest.mark.parametrize("case", ["mid-block", "block boundary, end == start, continuous data",
                                  "block boundary, end == start, data resuming at the change"])
def test_each_sample_is_corrected_with_the_response_of_its_epoch(tmp_path, case):
    """Gain x2 from an epoch change (counts x2 and response gain x2): every window whose read span stays a
    pad away from the change equals the single-epoch, unscaled reference to 1e-6 of the max; the windows
    near the change are not recorded (NaN), as at a gap."""
    if case == "mid-block":
        change, gap = T0 + 75 * 60, None  # inside block 2 (1:00-1:30)
    elif "continuous" in case:
        change, gap = T0 + 90 * 60, None  # the start of block 3, recorded through the change
    else:
        change = T0 + 90 * 60  # the start of block 3; the data resume at the change after an upgrade's gap
        gap = (change - 600, change)
    got = computed(tmp_path, "epochs", [("2019-01-01", change, 1.0), (change, None, 2.0)], (change, 2), gap)
    ref = computed(tmp_path, "ref", [("2019-01-01", None, 1.0)], None, gap)
    keep = far_from(got, change)
    for name in ("order_1", "order_2"):
        a, b = got[name].values, ref[name].values
        assert (np.isnan(a[keep]) == np.isnan(b[keep])).all(), name
        fine = keep & np.isfinite(b).all(axis=tuple(range(1, b.ndim)))
        assert fine.sum() > 400
        err = np.abs(a[fine] - b[fine]).max() / np.abs(b[fine]).max()
        assert err <= 1e-6, (case, name, err)
    lost = np.isnan(got["order_1"].values).any(axis=(1, 2)) & np.isfinite(ref["order_1"].values).all(axis=(1, 2))
    # Not recorded: the windows within a pad of the change, no more (10 with a 74 s pad and 40 s windows);
    # where the data resume at the change, those windows already are, at the gap's edge.
    assert (0 < lost.sum() if gap is None else lost.sum() == 0), lost.sum()
    assert lost.sum() <= int(np.ceil((2 * PAD + WINDOW) / HOP)) + 1, lost.sum()
    assert not (lost & keep).any()
    print(f"{case}: {lost.sum()} window(s) near the change not recorded (pad {PAD:g} s)")


def test_an_epoch_boundary_without_a_change_costs_no_window(tmp_path):
    """Two epochs with identical responses, the data resuming exactly at the boundary (end == start):
    the store is bitwise the single-epoch store, and no raw ObsPy warning reaches the console."""
    change = T0 + 90 * 60
    gap = (change - 600, change)
    got = computed(tmp_path, "same", [("2019-01-01", change, 1.0), (change, None, 1.0)], None, gap)
    ref = computed(tmp_path, "ref", [("2019-01-01", None, 1.0)], None, gap)
    for name in ("order_1", "order_2", "coverage"):
        assert got[name].values.tobytes() == ref[name].values.tobytes(), name


def _todo(tmp_path, epochs):
    inv = tmp_path / "inv.xml"
    epoch_inventory(ID, RATE, epochs).write(str(inv), format="STATIONXML")
    plan = make_plan(parse_config(config(tmp_path / "sds", tmp_path / "s.zarr", inv)), Store(tmp_path / "s.zarr"))
    sp = plan.stations[0]
    return sp, set(sp.todo)


def test_an_inventory_change_recomputes_exactly_the_blocks_whose_read_spans_touch_it(tmp_path):
    c1, c2 = T0 + 50 * 60, T0 + 100 * 60
    epochs = [("2019-01-01", c1, 1.0), (c1, c2, 2.0), (c2, None, 4.0)]
    archive(tmp_path / "sds")
    inv = tmp_path / "inv.xml"
    epoch_inventory(ID, RATE, epochs).write(str(inv), format="STATIONXML")
    run_blocks_in_process(config(tmp_path / "sds", tmp_path / "s.zarr", inv))
    sp, todo = _todo(tmp_path, epochs)
    assert todo == set()

    def touching(t0, t1):
        return {b for b in range(sp.blocks.count)
                if sp.grid.block_read_span(sp.blocks, b)[0] <= t1.ns and sp.grid.block_read_span(sp.blocks, b)[1] >= t0.ns}

    # A corrected response of the middle epoch.
    sp, todo = _todo(tmp_path, [epochs[0], (c1, c2, 3.0), epochs[2]])
    assert todo == touching(c1, c2) and sp.why == {"inputs changed": len(todo)} and 0 < len(todo) < sp.blocks.count
    # The change moved 5 minutes later: the blocks reading the 5 minutes whose response changed.
    moved = c1 + 300
    sp, todo = _todo(tmp_path, [("2019-01-01", moved, 1.0), (moved, c2, 2.0), epochs[2]])
    assert todo == touching(c1, moved) and todo, todo
    # An epoch split in two with the same values, or an end date extended: nothing to recompute.
    assert _todo(tmp_path, [epochs[0], (c1, c1 + 600, 2.0), (c1 + 600, c2, 2.0), epochs[2]])[1] == set()
    assert _todo(tmp_path, [("2019-01-01", c1, 1.0), (c1, c2, 2.0), (c2, "2030-01-01", 4.0)])[1] == set()


def test_a_hole_between_epochs_is_not_recorded_and_noted():
    """A second between two epochs of different responses (end 23:59:59 then 00:00:00): its samples
    count as not recorded, the block notes say so; a sample after the last epoch fails, naming the time."""
    from scatflow.errors import InputError

    rng = np.random.default_rng(1)
    tr = obspy.Trace(rng.standard_normal(int(3600 * RATE)) * 100,
                     header={"network": "XX", "station": "EP", "channel": "HHZ", "sampling_rate": RATE, "starttime": T0})
    change = T0 + 1800
    inv = epoch_inventory(ID, RATE, [("2019-01-01", change - 1, 1.0), (change, T0 + 3000, 2.0)])
    pre = Preprocess.from_section({**PRE, "pre_filt": tuple(PRE["pre_filt"]), "inventory": ["x"]})
    start = T0.ns + 600 * 10**9
    got = process(obspy.Stream([tr]), [ID], T0.ns, start, int(1800 * RATE), RATE, pre, inv)
    t = start + np.arange(got.recorded.shape[1]) * 20_000_000
    near = (t >= (change - 1).ns - pre.pad_ns - 20_000_000) & (t < change.ns + pre.pad_ns + 20_000_000)
    assert not got.recorded[0, (t >= (change - 1).ns) & (t < change.ns)].any()
    assert got.recorded[0, ~near].all()
    assert any("49 sample(s) from 2020-03-01T00:29:59.020000Z" in n and "no channel epoch in force" in n
               for n in got.notes), got.notes
    with pytest.raises(InputError, match=r"^XX.EP..HHZ: no usable response in preprocess.inventory at "
                                         r"2020-03-01T00:50:00.020000Z \(no channel epoch in force then\)"):
        process(obspy.Stream([tr]), [ID], T0.ns, T0.ns + 2400 * 10**9, int(900 * RATE), RATE, pre, inv)
    used, cuts = Responses(pre, inv).records([ID], (change - 60).ns, (change + 60).ns)[0]["digest"].split("@")
    assert used.split(",")[1] == "none" and cuts == f"{(change - 1).ns + 1},{change.ns}"


def test_info_shows_the_preprocessing_notes_of_a_block(tmp_path):
    from scatflow.report import store_report

    change = T0 + 75 * 60
    archive(tmp_path / "sds")
    inv = tmp_path / "inv.xml"
    epoch_inventory(ID, RATE, [("2019-01-01", change - 1, 1.0), (change, None, 2.0)]).write(str(inv), format="STATIONXML")
    run_blocks_in_process(config(tmp_path / "sds", tmp_path / "s.zarr", inv))
    text = store_report(tmp_path / "s.zarr")
    assert "preprocessing notes: block(s) 2 (first: XX.EP..HHZ: 49 sample(s) from 2020-03-01T01:14:59.020000Z" in text, text
