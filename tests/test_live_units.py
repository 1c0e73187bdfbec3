"""The live-archive rules one by one, without a cluster: overlaps, non-finite samples, rate changes,
late inputs, outages, per-station refusals and the design check before anything runs."""

import json

import numpy as np
import obspy
import pytest
import zarr
from helpers import SMALL_LAYERS, compute_all, n_windows, one_line_error, windows_per_block, write_config

from scatflow.cli import main
from scatflow.config import load_config
from scatflow.inputs.grid import Blocks
from scatflow.store.ledger import CHANGED, COMPLETE, FAILED, NO_DATA, Ledger
from scatflow.workflow.plan import make_plan
from scatflow.store.writer import Store
from scatflow.inputs.windows import align

T0 = obspy.UTCDateTime("2020-01-01")
RATE = 20.0


def trace(values, start=T0, rate=RATE, cha="HHZ"):
    return obspy.Trace(np.asarray(values, dtype=np.float64),
                       {"network": "XX", "station": "AAA", "channel": cha, "sampling_rate": rate, "starttime": start})


# -- align ---------------------------------------------------------------------------------------
def test_conflicting_overlap_is_not_recorded_whatever_the_order():
    a = trace(np.arange(10.0))  # samples 0..9
    b = trace(np.arange(5.0, 15.0) + [0, 0, 90, 90, 0, 0, 0, 0, 0, 0], start=T0 + 5 / RATE)  # 5..14
    for stream in (obspy.Stream([a, b]), obspy.Stream([b, a])):
        out = align(stream, ["XX.AAA..HHZ"], T0.ns, 15, RATE)
        assert out.conflicting == 2  # they disagree on samples 7 and 8 only
        assert out.recorded[0].tolist() == [True] * 7 + [False] * 2 + [True] * 6
        assert out.data[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 0, 9, 10, 11, 12, 13, 14]


def test_identical_overlap_stays_data():
    a = trace(np.arange(10.0))
    out = align(obspy.Stream([a, a.copy()]), ["XX.AAA..HHZ"], T0.ns, 10, RATE)
    assert out.conflicting == 0 and out.recorded.all()


def test_non_finite_samples_are_not_recorded_and_counted():
    values = np.arange(10.0)
    values[[3, 4]] = np.nan
    values[7] = np.inf
    out = align(obspy.Stream([trace(values)]), ["XX.AAA..HHZ"], T0.ns, 10, RATE)
    assert out.nonfinite == 3 and np.flatnonzero(~out.recorded[0]).tolist() == [3, 4, 7]
    assert np.isfinite(out.data).all()


def test_another_rate_outside_the_span_is_ignored_inside_it_is_listed():
    day1 = trace(np.ones(20))  # 1 s at 20 Hz
    day2 = trace(np.ones(40), start=T0 + 1, rate=40.0)  # then 40 Hz
    # The span ends exactly where the 40 Hz trace starts: nothing to say.
    out = align(obspy.Stream([day1, day2]), ["XX.AAA..HHZ"], T0.ns, 20, RATE)
    assert out.other_rates == [] and out.recorded.all()
    # A span reaching past it: those samples are not recorded, and the change is listed.
    out = align(obspy.Stream([day1, day2]), ["XX.AAA..HHZ"], T0.ns, 30, RATE)
    assert out.other_rates == [f"XX.AAA..HHZ: 40 Hz from {T0 + 1}"]
    assert out.recorded[0].tolist() == [True] * 20 + [False] * 10


# -- the ledger states ---------------------------------------------------------------------------
def test_changed_inputs_and_outages_in_the_ledger():
    files = [json.dumps([{"path": "a", "size": 1, "mtime": 1.0}])] * 3 + [""]
    notes = ["", "", json.dumps({"no_data": True}), ""]
    led = Ledger.from_arrays(Blocks(10, 40), [10, 10, 0, 0], ["", "", "", "boom"], files=files, notes=notes,
                             inputs_changed=lambda b, recorded: b == 1)
    assert [led.state(b) for b in range(4)] == [COMPLETE, CHANGED, NO_DATA, FAILED]
    assert led.todo(range(4)) == [1, 2, 3]


# -- planning over a real file that grows ----------------------------------------------------------
WINDOW_S, HOP_S, BLOCK_S = 10.0, 5.0, 600.0
PER_BLOCK = windows_per_block(BLOCK_S, HOP_S)


def write_day(path, seconds, seed=0, rate=RATE):
    data = np.random.default_rng(seed).normal(0, 300, int(seconds * rate)).round().astype(np.int32)
    obspy.Stream([trace(data, rate=rate)]).write(str(path), format="MSEED")
    return path


def config(tmp_path, path, seconds, **kw):
    return load_config(write_config(tmp_path / "run.toml", paths=[path], start=str(T0)[:19],
                                    end=str(T0 + seconds)[:19], window_s=WINDOW_S, block_s=BLOCK_S,
                                    layers=[{"octaves": 3, "resolution": 1, "quality": 1}], **kw))


def test_late_data_recomputes_the_blocks_it_reaches(tmp_path):
    path = write_day(tmp_path / "x.mseed", 1500)  # 25 minutes of a 30-minute span delivered
    cfg = config(tmp_path, path, 1800)
    _, results = compute_all(cfg)
    assert [(r.block, bool(r.no_data)) for r in results] == [(0, False), (1, False), (2, False)]
    assert results[2].computed < PER_BLOCK  # the last 5 minutes are missing
    assert make_plan(cfg, Store(cfg.output["store"])).stations[0].todo == []
    write_day(path, 1800)  # the rest arrives: the file is rewritten with more data
    plan = make_plan(cfg, Store(cfg.output["store"]))
    # Every block read this file, so every one is computed again (whole), and --dry-run says why.
    assert plan.stations[0].todo == [0, 1, 2]
    assert "3 block(s) to compute (3 inputs changed), 0 already complete" in plan.describe()
    _, results = compute_all(cfg)
    assert results[2].computed == n_windows(600, WINDOW_S, HOP_S) and results[2].ok


def test_a_new_file_in_a_done_block_span_recomputes_it(tmp_path):
    first = write_day(tmp_path / "a.mseed", 1800)
    cfg = load_config(write_config(tmp_path / "run.toml", paths=[tmp_path / "*.mseed"], start=str(T0)[:19],
                                   end=str(T0 + 1800)[:19], window_s=WINDOW_S, block_s=BLOCK_S,
                                   layers=[{"octaves": 3, "resolution": 1, "quality": 1}]))
    compute_all(cfg)
    other = trace(np.zeros(100), start=T0 + 700)  # 5 s of zeros inside block 1
    obspy.Stream([other]).write(str(tmp_path / "b.mseed"), format="MSEED")
    assert first.exists()
    assert make_plan(load_config(tmp_path / "run.toml"), Store(cfg.output["store"])).stations[0].todo == [1]


def test_a_block_without_data_is_an_outage_with_zero_coverage(tmp_path):
    path = write_day(tmp_path / "x.mseed", 600)  # 10 minutes of a 30-minute span
    cfg = config(tmp_path, path, 1800)
    _, results = compute_all(cfg)
    # Data ends with the first block: the other two are outages, not failures.
    assert [r.block for r in results if r.no_data] == [1, 2] and not any(r.error for r in results)
    g = zarr.open_group(cfg.output["store"], mode="r", use_consolidated=False)["XX.AAA."]
    assert (g["coverage"][PER_BLOCK:] == 0).all() and list(g["block_done"][:]) == [PER_BLOCK, 0, 0]
    assert [str(n) for n in g["block_notes"][:]] == ["", '{"no_data": true}', '{"no_data": true}']


def test_one_station_at_an_odd_rate_does_not_stop_the_others(tmp_path, capsys):
    good = write_day(tmp_path / "good.mseed", 1800)
    odd = obspy.read(str(write_day(tmp_path / "odd.mseed", 1800, rate=19.99)))
    for tr in odd:
        tr.stats.station = "BBB"
    odd.write(str(tmp_path / "odd.mseed"), format="MSEED")
    cfg = config(tmp_path, tmp_path / "*.mseed", 1800)
    plan = make_plan(cfg, Store(cfg.output["store"]))
    assert [sp.key for sp in plan.stations] == ["XX.AAA."]
    assert plan.refused == [("XX.BBB.", "XX.BBB.: network.window_s of 10.0 s is not a whole number of "
                                        "samples at 19.99 Hz")]
    assert good.exists()
    # --dry-run shows it; a real run would compute the rest and exit 1.
    assert main(["run", str(tmp_path / "run.toml"), "--dry-run"]) == 0
    assert "XX.BBB.          refused: XX.BBB.: network.window_s" in capsys.readouterr().out


@pytest.mark.parametrize("change, key", [({"overlap": 0.75}, "hop_s"), ({"block_s": 300.0}, "block_s"),
                                         ({"layers": SMALL_LAYERS}, "layers")])
def test_a_changed_design_is_one_line_before_anything_runs(tmp_path, capsys, change, key):
    path = write_day(tmp_path / "x.mseed", 1800)
    cfg = config(tmp_path, path, 1800)
    compute_all(cfg)
    kw = dict(paths=[path], start=str(T0)[:19], end=str(T0 + 1800)[:19], window_s=WINDOW_S, block_s=BLOCK_S,
              layers=[{"octaves": 3, "resolution": 1, "quality": 1}])
    kw.update(change)
    changed = write_config(tmp_path / "changed.toml", **kw)
    for argv in (["run", str(changed), "--dry-run"], ["run", str(changed), "--quiet"]):
        line = one_line_error(capsys, argv, "was written with another design", f"{key}: store has")
        assert "broadcast" not in line


# -- smaller things a user runs into -------------------------------------------------------------
def test_a_window_too_short_for_any_octave_says_the_shortest_window():
    from scatflow.errors import ConfigError
    from scatflow.workflow.plan import check_octaves

    with pytest.raises(ConfigError) as err:
        check_octaves([{"octaves": 2, "quality": 4}], 0.5, 20.0, "XX.AAA.")
    assert "too short for even one octave" in str(err.value) and "at least 0.8 s" in str(err.value)
    assert "-" not in str(err.value).split("use")[-1]  # never "use at most -3 octaves"


def test_transform_stream_names_a_bad_overlap():
    import scatflow

    with pytest.raises(ValueError, match=r"overlap must be in \[0, 1\), got 1.0"):
        scatflow.transform_stream(obspy.Stream([trace(np.zeros(400))]), layers=SMALL_LAYERS, window_s=10.0,
                                  overlap=1.0)


def test_info_piped_into_head_ends_quietly(tmp_path):
    """`scatflow info STORE | head`: the reader is gone before scatflow writes; no traceback."""
    import subprocess
    import sys

    path = write_day(tmp_path / "x.mseed", 1800)
    compute_all(config(tmp_path, path, 1800))
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from scatflow.cli import main; sys.exit(main())",
                             "info", str(tmp_path / "out.zarr")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    proc.stdout.close()  # as `head` does once it has its lines
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == "", err


def test_plot_refuses_an_f1_outside_the_bank(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = write_day(tmp_path / "x.mseed", 1800)
    compute_all(load_config(write_config(tmp_path / "run.toml", paths=[path], start=str(T0)[:19],
                                         end=str(T0 + 1800)[:19], window_s=WINDOW_S, block_s=BLOCK_S,
                                         layers=[{"octaves": 3, "resolution": 1, "quality": 1},
                                                 {"octaves": 2, "resolution": 1, "quality": 1}])))
    one_line_error(capsys, ["plot", str(tmp_path / "out.zarr"), "--f1", "0.1"], "--f1 0.1 Hz is outside",
                   "1.25 to 5 Hz")


def test_an_unreadable_file_among_others_is_skipped_with_its_reason(tmp_path):
    write_day(tmp_path / "good.mseed", 1800)
    (tmp_path / "bad.mseed").write_text("not a waveform")
    cfg = config(tmp_path, tmp_path / "*.mseed", 1800)
    plan = make_plan(cfg, Store(cfg.output["store"]))
    assert [sp.key for sp in plan.stations] == ["XX.AAA."]
    ((path, why),) = plan.refused
    assert path == str(tmp_path / "bad.mseed") and why.startswith("not a readable waveform file")
    assert f"{path}" in plan.describe() and "refused: not a readable waveform file" in plan.describe()


def test_pruned_raw_data_keeps_its_results(tmp_path):
    """Deleting a day file after it was processed (a rolling raw-data window) recomputes nothing:
    results are never thrown away because their inputs were pruned."""
    path = write_day(tmp_path / "x.mseed", 1800)
    cfg = config(tmp_path, tmp_path / "*.mseed", 1800)
    compute_all(cfg)
    path.unlink()
    # The glob still finds the station: later data has arrived, outside the span.
    obspy.Stream([trace(np.zeros(1200), start=T0 + 1860)]).write(str(tmp_path / "later.mseed"), format="MSEED")
    assert make_plan(config(tmp_path, tmp_path / "*.mseed", 1800), Store(cfg.output["store"])).stations[0].todo == []
