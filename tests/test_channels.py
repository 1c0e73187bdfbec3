"""A station's channel set changes: a new channel joins the store's group, a channel that stops keeps
its data, a narrowed select is refused, and a driver killed while re-laying a group loses nothing.
In one process, without a cluster (the nightly SDS scenario is in test_live_archive.py)."""

import os

import numpy as np
import obspy
import pytest
import zarr
from helpers import assert_stores_bitwise_equal, compute_all, one_line_error, write_config

from scatflow.store import relay
from scatflow.cli import main
from scatflow.config import load_config
from scatflow.workflow.plan import make_plan
from scatflow.report import store_report
from scatflow.store.writer import Store

T0 = obspy.UTCDateTime("2020-01-01")
RATE = 20.0
KEY = "XX.AAA."
IDS = {cha: f"XX.AAA..{cha}" for cha in ("HHE", "HHN", "HHZ")}
PER_BLOCK = 120  # 600 s blocks of 10 s windows, hop 5 s
LAYERS = [{"octaves": 3, "resolution": 1, "quality": 1}, {"octaves": 2, "resolution": 1, "quality": 1}]


def deliver(folder, cha, t0, t1, seed=None):
    """One miniSEED file of channel ``cha`` holding ``[T0 + t0, T0 + t1)`` seconds (ObsPy-written)."""
    rng = np.random.default_rng(seed if seed is not None else 10 * int(t0) + "ENZ".index(cha[-1]))
    data = rng.normal(0, 300, int((t1 - t0) * RATE)).round().astype(np.int32)
    tr = obspy.Trace(data, {"network": "XX", "station": "AAA", "channel": cha, "sampling_rate": RATE,
                            "starttime": T0 + t0})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cha}.{int(t0)}.mseed"
    tr.write(str(path), format="MSEED")
    return path


def config(tmp_path, seconds, store="out.zarr", select=None, start=0, name="run.toml"):
    return load_config(write_config(tmp_path / name, paths=[tmp_path / "data" / "*.mseed"], select=select,
                                    start=str(T0 + start)[:19], end=str(T0 + seconds)[:19], window_s=10.0,
                                    block_s=600.0, layers=LAYERS, store=tmp_path / store))


def group(tmp_path, store="out.zarr"):
    return zarr.open_group(str(tmp_path / store), mode="r", use_consolidated=False)[KEY]


def test_a_new_channel_joins_and_the_store_ends_equal_to_a_fresh_run(tmp_path):
    data = tmp_path / "data"
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 0, 1800)
    _, results = compute_all(config(tmp_path, 1800))
    assert [r.block for r in results if r.ok] == [0, 1, 2]
    before = {name: group(tmp_path)[name][:] for name in ("order_1", "order_2", "coverage")}
    # The next night: HHE is installed at 700 s (its first file is late), the others go on.
    deliver(data, "HHE", 700, 3600)
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 1800, 3600)
    cfg = config(tmp_path, 3600)
    plan = make_plan(cfg, Store(cfg.output["store"]))
    assert not plan.refused
    (sp,) = plan.stations
    assert sp.added == (IDS["HHE"],) and sp.station.channels == [IDS["HHE"], IDS["HHN"], IDS["HHZ"]]
    # Block 0 never saw HHE data (it starts at 700 s): kept. Block 1 now has HHE in its span; block 2
    # grows by a window, blocks 3-5 are new.
    assert sp.todo == [1, 2, 3, 4, 5] and sp.why == {"inputs changed": 1, "pending": 4}
    assert "adds channel(s) XX.AAA..HHE to the store" in plan.describe()
    compute_all(cfg)
    g = group(tmp_path)
    assert [str(c) for c in g["channel"][:]] == [IDS["HHE"], IDS["HHN"], IDS["HHZ"]]
    # Block 0 kept its coefficients, bit for bit, and holds coverage 0 and NaN for HHE.
    for name, old in before.items():
        assert g[name][:PER_BLOCK, 1:].tobytes() == old[:PER_BLOCK].tobytes(), name
    assert (g["coverage"][:PER_BLOCK, 0] == 0).all() and np.isnan(g["order_1"][:PER_BLOCK, 0]).all()
    assert (g["coverage"][PER_BLOCK + 20 :, 0] == 1).all()  # HHE recorded from 700 s on

    # One fresh run over the final files: the same store, every array, ledger included.
    compute_all(config(tmp_path, 3600, store="fresh.zarr", name="fresh.toml"))
    assert_stores_bitwise_equal(tmp_path / "out.zarr", tmp_path / "fresh.zarr", [KEY])


@pytest.mark.parametrize("hhe_from, changed", [("2019-01-01", [0, 1]), (T0 + 1300, [])])
def test_a_new_channel_with_an_inventory_gets_its_coordinates_and_responses(tmp_path, hhe_from, changed):
    """With [preprocess] and an inventory, the group's coordinates along ``channel`` are re-laid from
    the inventory, and the blocks whose read spans the new channel's response epoch reaches are
    computed again (all of them when its epoch began long before its data; none before its epoch
    when it begins with the data), and the store still ends equal to a fresh run."""
    from scatflow.synthetic import station_inventory

    inv = station_inventory([(IDS[c], RATE) for c in ("HHE", "HHN", "HHZ")], start="2019-01-01",
                            coords={"AAA": (45.5, 6.25, 1200.0)})
    for chan in inv[0][0].channels:
        if chan.code == "HHE":
            chan.start_date = obspy.UTCDateTime(hhe_from)
    inv.write(str(tmp_path / "st.xml"), format="STATIONXML")
    pre = f'inventory = ["{tmp_path / "st.xml"}"]\nresponse = "sensitivity"'

    def cfg(seconds, store="out.zarr"):
        return load_config(write_config(tmp_path / f"{store}.toml", paths=[tmp_path / "data" / "*.mseed"],
                                        start=str(T0)[:19], end=str(T0 + seconds)[:19], window_s=10.0,
                                        block_s=600.0, layers=LAYERS, store=tmp_path / store, preprocess=pre))

    data = tmp_path / "data"
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 0, 1800)
    compute_all(cfg(1800))
    deliver(data, "HHE", 1300, 2400)
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 1800, 2400)
    plan, _ = compute_all(cfg(2400))
    # Block 2 (partial until now) and block 3 are computed anyway; blocks 0 and 1 only when HHE's
    # response reaches them.
    assert plan.stations[0].todo == changed + [2, 3]
    assert plan.stations[0].why.get("inputs changed", 0) == len(changed)
    g = group(tmp_path)
    assert list(g["latitude"][:]) == [45.5] * 3 and g["order_1"].attrs["units"] == "m/s"
    compute_all(cfg(2400, store="fresh.zarr"))
    assert_stores_bitwise_equal(tmp_path / "out.zarr", tmp_path / "fresh.zarr", [KEY])


def test_a_run_over_the_span_before_a_new_channel_is_not_refused(tmp_path, capsys):
    data = tmp_path / "data"
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 0, 1800)
    compute_all(config(tmp_path, 1800))
    before = {name: group(tmp_path)[name][:] for name in ("order_1", "coverage", "block_files", "block_done")}
    deliver(data, "HHE", 2400, 3600)  # a channel added later
    # Recomputing the first half hour (as after a fix in an old day) works and computes nothing.
    assert main(["run", str(tmp_path / "run.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "refused" not in out and "0 block(s) to compute, 3 already complete; adds channel(s) XX.AAA..HHE" in out
    plan, results = compute_all(config(tmp_path, 1800))
    assert results == [] and not plan.refused
    g = group(tmp_path)
    assert [str(c) for c in g["channel"][:]] == [IDS["HHE"], IDS["HHN"], IDS["HHZ"]]
    assert (g["coverage"][:, 0] == 0).all() and np.isnan(g["order_1"][:, 0]).all()
    assert g["order_1"][:, 1:].tobytes() == before["order_1"].tobytes()
    assert g["coverage"][:, 1:].tobytes() == before["coverage"].tobytes()
    assert list(g["block_files"][:]) == list(before["block_files"])
    assert list(g["block_done"][:]) == [PER_BLOCK] * 2 + [PER_BLOCK - 1]
    assert make_plan(config(tmp_path, 1800), Store(tmp_path / "out.zarr")).stations[0].todo == []


def test_a_channel_that_disappears_from_the_input_keeps_its_data(tmp_path):
    """HHE's files were deleted once processed (or this run's input does not reach them): the input
    has no HHE at all. The store keeps it, with its data; new blocks hold coverage 0 for it."""
    data = tmp_path / "data"
    # 1805 s: three whole blocks, so none of them grows (a grown block is computed again).
    hhe = [deliver(data, cha, 0, 1805) for cha in ("HHE", "HHN", "HHZ")][0]
    compute_all(config(tmp_path, 1805))
    before = {name: group(tmp_path)[name][:] for name in ("order_1", "order_2", "coverage")}
    assert (before["coverage"][:, 0] == 1).all()
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 1900, 3600)
    hhe.unlink()
    cfg = config(tmp_path, 3600)
    plan = make_plan(cfg, Store(cfg.output["store"]))
    assert not plan.refused and plan.stations[0].added == () and plan.stations[0].todo == [3, 4, 5]
    _, results = compute_all(cfg)
    assert all(r.ok or r.no_data for r in results)
    g = group(tmp_path)
    assert [str(c) for c in g["channel"][:]] == [IDS["HHE"], IDS["HHN"], IDS["HHZ"]]
    for name, old in before.items():
        assert g[name][: 3 * PER_BLOCK].tobytes() == old.tobytes(), name  # every channel's data kept
    assert (g["coverage"][3 * PER_BLOCK + 20 :, 0] == 0).all()
    assert (g["coverage"][3 * PER_BLOCK + 20 :, 1:] == 1).all()


def test_a_narrowed_select_is_refused_naming_the_channels(tmp_path, capsys):
    data = tmp_path / "data"
    for cha in ("HHE", "HHN", "HHZ"):
        deliver(data, cha, 0, 1800)
    compute_all(config(tmp_path, 1800))
    write_config(tmp_path / "narrow.toml", paths=[data / "*.mseed"], select=["XX.AAA..HH[NZ]"],
                 start=str(T0)[:19], end=str(T0 + 1800)[:19], window_s=10.0, block_s=600.0, layers=LAYERS,
                 store=tmp_path / "out.zarr")
    one_line_error(capsys, ["run", str(tmp_path / "narrow.toml"), "--dry-run"],
                   "XX.AAA.: the store holds channel(s) XX.AAA..HHE, which input.select excludes",
                   "select them again, or use another output.store")


def test_info_says_when_each_channel_starts_and_ends(tmp_path, capsys):
    data = tmp_path / "data"
    deliver(data, "HHZ", 0, 1800)
    deliver(data, "HHN", 0, 1200)  # stops at 1200 s
    deliver(data, "HHE", 700, 1800)  # starts at 700 s
    compute_all(config(tmp_path, 1800))
    assert main(["info", str(tmp_path / "out.zarr")]) == 0
    out = capsys.readouterr().out
    # From the first window holding a sample of the channel to the end of the last one.
    assert "  recorded:   XX.AAA..HHE 2020-01-01T00:11:35Z .. 2020-01-01T00:30:00Z" in out
    assert "              XX.AAA..HHN 2020-01-01T00:00:00Z .. 2020-01-01T00:20:05Z" in out
    assert "              XX.AAA..HHZ 2020-01-01T00:00:00Z .. 2020-01-01T00:30:00Z" in out


def _fail_at(monkeypatch, step):
    """Make the re-lay stop at ``step`` as a killed driver would (no cleanup runs)."""

    class Killed(Exception):
        pass

    if step == "building":  # the second array of the new group is half written
        calls = []
        original = relay.relay_array

        def relay_array(*args, **kw):
            calls.append(1)
            if len(calls) == 2:
                raise Killed
            return original(*args, **kw)

        monkeypatch.setattr(relay, "relay_array", relay_array)
    elif step in ("old moved aside", "new moved in"):  # the first or the second rename is the last done
        calls, original = [], os.rename

        def rename(a, b):
            calls.append(1)
            original(a, b)
            if len(calls) == (1 if step == "old moved aside" else 2):
                raise Killed

        monkeypatch.setattr(relay.os, "rename", rename)
    return Killed


@pytest.mark.parametrize("step", ["building", "old moved aside", "new moved in"])
def test_a_driver_killed_while_adding_a_channel_loses_nothing(tmp_path, monkeypatch, step):
    data = tmp_path / "data"
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 0, 1800)
    compute_all(config(tmp_path, 1800))
    before = {name: group(tmp_path)[name][:] for name in ("order_1", "order_2", "coverage", "block_done")}
    deliver(data, "HHE", 700, 3600)
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 1800, 3600)
    cfg = config(tmp_path, 3600)
    killed = _fail_at(monkeypatch, step)
    with pytest.raises(killed):
        compute_all(cfg)
    monkeypatch.undo()
    assert os.path.isdir(relay.work_dir(cfg.output["store"]))
    info = store_report(cfg.output["store"])
    assert "a run is adding a channel to a station, or was stopped while it did; the next run finishes it" in info
    assert (KEY in info) == (step != "old moved aside")  # between the renames the group is away
    # What the next run finds first: the group, old or re-laid, never a loss.
    Store(cfg.output["store"]).recover()
    assert not os.path.exists(relay.work_dir(cfg.output["store"]))
    g = group(tmp_path)
    channels = [str(c) for c in g["channel"][:]]
    old = slice(None) if channels == [IDS["HHN"], IDS["HHZ"]] else slice(1, None)
    assert channels[old] == [IDS["HHN"], IDS["HHZ"]], channels
    for name in ("order_1", "order_2", "coverage"):
        assert g[name][:, old].tobytes() == before[name].tobytes(), name
    assert (g["block_done"][:] == before["block_done"]).all()
    # And the run, done again, ends as a fresh run does.
    compute_all(cfg)
    compute_all(config(tmp_path, 3600, store="fresh.zarr", name="fresh.toml"))
    assert_stores_bitwise_equal(tmp_path / "out.zarr", tmp_path / "fresh.zarr", [KEY])


def test_relaying_keeps_array_metadata_and_chunk_absence(tmp_path):
    """Blocks never written stay unwritten (no chunk), so the ledger's has-data rule still holds."""
    data = tmp_path / "data"
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 0, 600)  # only block 0 has data; blocks 1-2 are outages
    compute_all(config(tmp_path, 1800))
    store = tmp_path / "out.zarr"
    def shards():
        return sorted(f for f in os.listdir(store / KEY / "order_1") if f.startswith("c."))

    before = shards()
    Store(store).add_channels(KEY, [IDS["HHE"], IDS["HHN"], IDS["HHZ"]])
    g = group(tmp_path)
    assert g["coverage"].chunks == (PER_BLOCK, 3) and g["order_2"].chunks[:2] == (PER_BLOCK, 3)
    assert shards() == before == ["c.0.0.0"]
    # Outage blocks wrote their coverage (0): the new channel gets 0 there too.
    assert (g["coverage"][:, 0] == 0).all() and (g["coverage"][PER_BLOCK:] == 0).all()
    assert g["order_1"].attrs["long_name"] == "order-1 scattering coefficients (median)"


def test_a_stored_per_station_model_is_not_applied_to_a_station_that_gained_a_channel(tmp_path):
    """``joint = false``: a station's own model was fitted on its two channels; once a third joins,
    labelling with it would misalign the features: refused in one line naming the station."""
    from scatflow.analysis.analyze import analyze
    from scatflow.errors import InputError

    def with_analysis(seconds):
        cfg = config(tmp_path, seconds)
        cfg.path.write_text(cfg.path.read_text() + "[analysis]\njoint = false\nsample = 300\n"
                            "components = 2\nclusters = 2\n")
        return load_config(cfg.path)

    data = tmp_path / "data"
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 0, 1800)
    compute_all(with_analysis(1800))
    analyze(with_analysis(1800), log=lambda m: None)
    deliver(data, "HHE", 1800, 2400)
    for cha in ("HHN", "HHZ"):
        deliver(data, cha, 1800, 2400)
    compute_all(with_analysis(2400))
    with pytest.raises(InputError, match=r"station XX\.AAA\.'s channels .* \(HHN, HHZ now HHE, HHN, HHZ\); use --refit"):
        analyze(with_analysis(2400), log=lambda m: None)
    summary = analyze(with_analysis(2400), refit=True, log=lambda m: None)
    assert summary.stations == [KEY]
