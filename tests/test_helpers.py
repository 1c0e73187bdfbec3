"""The test helpers themselves: the window arithmetic and the SLURM probe."""

import os
import stat

import pytest
from helpers import block_sizes, n_blocks, n_windows, slurm_up


@pytest.mark.parametrize("span, window, hop", [(3600, 40, 20), (86400, 40, 20), (21600, 20, 10), (630, 20, 10),
                                               (40, 40, 20), (39, 40, 20), (7200, 600, 300)])
def test_n_windows_counts_windows_inside_the_span(span, window, hop):
    inside = sum(1 for k in range(span) if k * hop + window <= span)
    assert n_windows(span, window, hop) == inside


def test_blocks():
    assert n_blocks(719, 180) == 4 and n_blocks(720, 180) == 4 and n_blocks(721, 180) == 5
    assert block_sizes(719, 180) == [180, 180, 180, 179]
    assert block_sizes(360, 180) == [180, 180]


@pytest.fixture
def fake_sinfo(tmp_path, monkeypatch):
    """Put a fake ``sinfo`` first on PATH; returns a function setting its output and exit status."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "sinfo"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def set_answer(stdout, code=0):
        script.write_text(f"#!/bin/sh\nprintf '%s' '{stdout}'\nexit {code}\n")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)

    return set_answer


@pytest.mark.parametrize(
    "stdout, code, up",
    [
        ("idle\n", 0, True),
        ("down\nmix\n", 0, True),
        ("alloc\n", 0, True),
        ("down\ndrain\n", 0, False),
        ("idle*\n", 0, False),  # not responding
        ("", 0, False),
        ("mix\n", 1, False),  # sinfo failed: what it printed does not count
        ("idle\n", 124, False),  # timed out
    ],
)
def test_slurm_up_reads_sinfo(fake_sinfo, stdout, code, up):
    fake_sinfo(stdout, code)
    assert slurm_up() is up


def test_slurm_up_without_sinfo(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert slurm_up() is False
