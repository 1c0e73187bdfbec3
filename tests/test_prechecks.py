"""Preprocessing settings checked before anything runs: per channel against its Nyquist frequency
and input units (the station refused with one line in the plan, --dry-run included), the pad
against the block length (a ConfigError), and at run time for a rate the plan did not see."""

import numpy as np
import obspy
import pytest
from helpers import one_line_error, write_config

from scatflow.cli import main
from scatflow.errors import InputError
from scatflow.inputs.inventory import load_inventory, units
from scatflow.inputs.preprocess import Preprocess
from scatflow.inputs.process import process
from scatflow.synthetic import station_inventory

T0 = obspy.UTCDateTime("2020-03-01T00:00:00")
CHANNELS = [("XX.A..HHZ", 50.0), ("XX.B..BHZ", 20.0), ("XX.C..BDF", 50.0)]


@pytest.fixture
def files(tmp_path):
    """Ten minutes of three stations (50 Hz, 20 Hz, and a 50 Hz microbarometer in Pa) and their StationXML."""
    rng = np.random.default_rng(0)
    for seed_id, rate in CHANNELS:
        net, sta, loc, cha = seed_id.split(".")
        tr = obspy.Trace((rng.standard_normal(int(600 * rate)) * 100).astype(np.int32),
                         header={"network": net, "station": sta, "location": loc, "channel": cha,
                                 "sampling_rate": rate, "starttime": T0})
        tr.write(str(tmp_path / f"{sta}.mseed"), format="MSEED")
    inv = station_inventory(CHANNELS)
    pa = inv.select(station="C")[0][0][0].response
    pa.response_stages[0].input_units = pa.instrument_sensitivity.input_units = "PA"
    inv.write(str(tmp_path / "st.xml"), format="STATIONXML")
    return tmp_path


def dry_run(files, capsys, body):
    cfg = write_config(files / "run.toml", paths=[files / "*.mseed"], store=files / "s.zarr",
                       preprocess=f'inventory = ["{files / "st.xml"}"]\n{body}')
    code = main(["run", str(cfg), "--dry-run"])
    out = capsys.readouterr().out
    return code, {line.split()[0]: line for line in out.splitlines() if line.startswith("  XX.")}


@pytest.mark.parametrize("body, station, why", [
    ('filter = { type = "lowpass", freq = 12.0 }', "XX.B.",
     "refused: XX.B..BHZ: 'preprocess.filter.freq' = 12 Hz (lowpass) is not below the Nyquist frequency of its "
     "20 Hz data (10 Hz)"),
    ('filter = { type = "highpass", freq = 10.0 }', "XX.B.",
     "refused: XX.B..BHZ: 'preprocess.filter.freq' = 10 Hz (highpass) is not below the Nyquist frequency"),
    ('filter = { type = "bandpass", freqmin = 1.0, freqmax = 12.0 }', "XX.B.",
     "refused: XX.B..BHZ: 'preprocess.filter.freqmax' = 12 Hz (bandpass) is not below the Nyquist frequency of "
     "its 20 Hz data (10 Hz) (ObsPy would make it a highpass)"),
    ('response = "velocity"\npre_filt = [0.2, 0.5, 11.0, 12.0]', "XX.B.",
     "refused: XX.B..BHZ: 'preprocess.pre_filt' ends at 12 Hz, above the Nyquist frequency of its 20 Hz data "
     "(10 Hz)"),
    ('response = "velocity"\npre_filt = [0.2, 0.5, 8.0, 9.5]', "XX.C.",
     "refused: XX.C..BDF: 'preprocess.response' = 'velocity' needs an input unit of ground motion (M, M/S or "
     "M/S**2), the inventory gives PA"),
])
def test_settings_that_cannot_apply_to_a_channel_refuse_its_station(files, capsys, body, station, why):
    code, lines = dry_run(files, capsys, body)
    assert code == 0
    assert why in lines[station], lines
    assert "refused" not in lines["XX.A."] and "block(s) to compute" in lines["XX.A."]


def test_a_passband_above_the_output_nyquist_is_refused(files, capsys):
    """Resampled down to 20 Hz, a 12 Hz highpass leaves nothing: every station is refused, the run is one line."""
    cfg = write_config(files / "run.toml", paths=[files / "*.mseed"], store=files / "s.zarr",
                       preprocess='filter = { type = "highpass", freq = 12.0 }\nsampling_rate = 20.0')
    one_line_error(capsys, ["run", str(cfg), "--dry-run"],
                   "nothing to compute: XX.A.: XX.A..HHZ: 'preprocess.filter.freq' = 12 Hz (highpass) leaves nothing "
                   "below the Nyquist frequency of the output (10 Hz at preprocess.sampling_rate = 20)",
                   "(and 2 other station(s))")


def test_sensitivity_keeps_the_inventory_units():
    inv = station_inventory(CHANNELS)
    pa = inv.select(station="C")[0][0][0].response
    pa.response_stages[0].input_units = pa.instrument_sensitivity.input_units = "Pa"
    pre = Preprocess.from_section({"response": "sensitivity", "inventory": ["x"]})
    assert units(pre, inv, ["XX.C..BDF"], T0.ns) == "Pa"
    assert units(pre, inv, ["XX.A..HHZ"], T0.ns) == "m/s"


def test_a_pad_longer_than_a_block_is_refused_with_the_keys(files, capsys):
    cfg = write_config(files / "run.toml", paths=[files / "*.mseed"], store=files / "s.zarr", block_s=1800,
                       preprocess='filter = { type = "highpass", freq = 1.0 }\npad_s = 2000.0')
    one_line_error(capsys, cfg, "'preprocess.pad_s' = 2000 s is longer than 'output.block_s' = 1800 s",
                   "use blocks of at least 2000 s")
    cfg = write_config(files / "run.toml", paths=[files / "*.mseed"], store=files / "s.zarr", block_s=60,
                       preprocess=f'inventory = ["{files / "st.xml"}"]\nresponse = "velocity"\n'
                                  'pre_filt = [0.01, 0.02, 8.0, 9.0]')
    one_line_error(capsys, cfg, "(the default, twice the slowest step's transient) is longer than "
                                "'output.block_s' = 60 s")
    assert not (files / "s.zarr").exists()


def test_a_rate_the_plan_did_not_see_fails_with_the_key_not_scipy(files):
    """A channel whose data come at a lower rate than planned (say, after a change) fails its blocks with
    the key and the limit instead of SciPy's sentence or ObsPy's silent highpass."""
    tr = obspy.read(str(files / "B.mseed"))[0]
    tr.data = tr.data.astype(np.float64)
    for filt, key in (({"type": "lowpass", "freq": 12.0}, "filter.freq"),
                      ({"type": "bandpass", "freqmin": 1.0, "freqmax": 12.0}, "filter.freqmax")):
        pre = Preprocess.from_section({"filter": filt})
        with pytest.raises(InputError, match=rf"^XX.B..BHZ: 'preprocess.{key}' = 12 Hz"):
            process(obspy.Stream([tr]), ["XX.B..BHZ"], T0.ns, T0.ns + 60 * 10**9, 20 * 300, 20.0, pre,
                    load_inventory([str(files / "st.xml")]))
