"""Constant-size records of store format 2: a done block's summary (``block_summary``) and a run's
entry in the root ``scatflow.runs`` log (``docs/store-format.md``).

One definition each, shared by whatever writes them (a run, :mod:`scatflow.store.upgrade`), so a
store upgraded from format 1 holds the very text a fresh run writes.
"""

from __future__ import annotations

import json

import numpy as np

#: Runs kept in the root's run log (the oldest go first).
RUNS_KEPT = 20
#: Failures and worker names kept in one run's entry (the counts keep the totals).
LIST_KEPT = 10


def block_summary(channels, coverage, order_1) -> str:
    """The ``block_summary`` cell of a done block: JSON text.

    ``{"coverage": {SEED_ID: mean coverage}, "nan": {SEED_ID: windows whose order_1 has a NaN},
    "nan_any": windows with a NaN in order_1 on any channel}``, keys sorted.

    Parameters
    ----------
    channels : sequence of str
        SEED ids, in the group's channel order.
    coverage : array, (windows, channels)
        The block's coverage (fraction of recorded samples, unit 1); averaged in float64.
    order_1 : array, (windows, channels, f1)
        The block's first-order coefficients.
    """
    cov = np.asarray(coverage, dtype=np.float64)
    first = np.asarray(order_1)
    bad = np.isnan(first.reshape(first.shape[0], first.shape[1], -1)).any(axis=2)
    doc = {"coverage": {str(c): float(cov[:, i].mean()) for i, c in enumerate(channels)},
           "nan": {str(c): int(bad[:, i].sum()) for i, c in enumerate(channels)},
           "nan_any": int(bad.any(axis=1).sum())}
    return json.dumps(doc, sort_keys=True)


def count(value) -> int:
    """A count of format 2, or the length of a format-1 per-block list."""
    return value if isinstance(value, int) else len(value or [])


def run_summary(entry: dict) -> dict:
    """A run's entry in the root run log, counts only: per-block lists become counts, at most
    :data:`LIST_KEPT` failures (``failures``), worker names, skipped and refused stations and
    notes are kept. Idempotent: a summary gives itself back.

    Parameters
    ----------
    entry : dict
        The run's record (a format-1 entry, with ``blocks_failed`` and ``blocks_no_data`` lists
        of blocks, or a summary).
    """
    lists = ("failures", "workers", "skipped", "refused", "notes")
    counted = ("blocks_failed", "blocks_no_data", "workers_count")
    # One key order for a format-1 entry and for a summary, so summarizing again changes no byte.
    out = {k: v for k, v in entry.items() if k not in lists + counted}
    failed = entry.get("blocks_failed", 0)
    workers = list(entry.get("workers") or [])
    out["blocks_failed"] = count(failed)
    out["blocks_no_data"] = count(entry.get("blocks_no_data", 0))
    out["workers_count"] = int(entry.get("workers_count", len(workers)))
    if not isinstance(failed, int) or "failures" in entry:
        out["failures"] = list(entry.get("failures", failed))[:LIST_KEPT]
    out["workers"] = workers[:LIST_KEPT]
    for key in ("skipped", "refused", "notes"):
        if key in entry:
            out[key] = list(entry[key])[:LIST_KEPT]
    return out


def run_log(runs: list) -> list:
    """The root run log of format 2: the last :data:`RUNS_KEPT` entries, each a :func:`run_summary`."""
    return [run_summary(r) for r in list(runs)[-RUNS_KEPT:]]


def versions() -> dict:
    """Versions of the libraries whose behaviour the numbers depend on."""
    import dask
    import obspy
    import scipy

    import xarray as xr
    import zarr

    from .. import __version__

    return {
        "scatflow": __version__,
        "obspy": obspy.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "dask": dask.__version__,
        "xarray": xr.__version__,
        "zarr": zarr.__version__,
    }
