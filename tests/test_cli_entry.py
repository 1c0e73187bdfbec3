"""The command line as an entry point: what it accepts for a store, and what it leaves behind in a
process that calls it (a test runner, a notebook)."""

import contextlib
import signal

import pytest
from helpers import SMALL_LAYERS, toml_layers

from scatflow.cli import main
from scatflow.synthetic.store import write_store
from scatflow.workflow import cluster as clustermod


def write_run_config(path, store):
    """A run config naming ``store`` in ``output.store`` (with a one-line ``[analysis]``)."""
    path.write_text("\n".join(["[input]", 'paths = ["unused.mseed"]', "[network]",
                               f"layers = {toml_layers(SMALL_LAYERS)}", "[output]", f'store = "{store}"',
                               "[analysis]", "components = 2", "clusters = 2", "sample = 500"]) + "\n")
    return path


def test_info_plot_and_export_accept_the_run_config(tmp_path, capsys, monkeypatch):
    """``scatflow info arch/archive.toml`` reads the store the config names, as ``analyze`` does: the
    same output as with the store's path."""
    pytest.importorskip("sklearn")
    monkeypatch.setattr(clustermod, "connect", lambda cfg, log=print: contextlib.nullcontext())
    store = write_store(tmp_path / "s.zarr", ["X9.A."], 360, layers=SMALL_LAYERS, sampling_rate=20.0,
                        block_windows=90).path
    cfg = write_run_config(tmp_path / "run.toml", store)
    assert main(["analyze", str(cfg), "--quiet"]) == 0
    capsys.readouterr()
    outputs = {}
    for name, arg in (("by-store", str(store)), ("by-config", str(cfg))):
        assert main(["info", arg]) == 0
        assert main(["plot", arg, "-o", str(tmp_path / f"{name}.png")]) == 0
        assert main(["plot", arg, "--analysis", "ica", "-o", str(tmp_path / f"{name}.an.png")]) == 0
        assert main(["export", arg, "--analysis", "ica", "-o", str(tmp_path / f"{name}.csv")]) == 0
        outputs[name] = capsys.readouterr().out.replace(name, "NAME")
    assert outputs["by-store"] == outputs["by-config"] and "X9.A." in outputs["by-config"]
    for suffix in (".png", ".an.png", ".an.weights.png", ".csv"):
        assert (tmp_path / f"by-store{suffix}").read_bytes() == (tmp_path / f"by-config{suffix}").read_bytes(), suffix


def test_main_gives_the_callers_sigterm_handler_back(tmp_path, capsys):
    """``main`` stops a run on SIGTERM with its own handler, and restores the caller's when it
    returns, whatever the outcome (a SIGTERM to a test runner that called it must not raise there)."""
    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert main(["info", str(tmp_path / "absent.zarr")]) == 2
        assert signal.getsignal(signal.SIGTERM) is mine
        assert main(["example", str(tmp_path / "ex"), "--quiet"]) == 0
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)
    capsys.readouterr()
