"""Helpers shared by the hand-run benchmarks (timing and peak-memory probes)."""

from __future__ import annotations

import os
import statistics
import time


def rss_mb() -> float:
    """Current resident set size of this process, in MB."""
    return _status_kb("VmRSS") / 1024


def reset_peak() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``); False when not permitted."""
    try:
        with open(f"/proc/{os.getpid()}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    """Peak resident set size since the last :func:`reset_peak`, in MB."""
    return _status_kb("VmHWM") / 1024


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(fn):
    """Run ``fn()`` once; return (seconds, extra peak RSS in MB above the RSS before)."""
    reset_peak()
    base = rss_mb()
    t0 = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    return elapsed, peak_mb() - base


def median(values):
    return statistics.median(values)
