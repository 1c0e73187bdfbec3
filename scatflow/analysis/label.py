"""Labelling windows with a model: which chunks need it, and writing their
components, cluster and distance to ``analysis/<name>/<station>``.

Chunks are the station group's blocks. A chunk is labelled again when its
block's ledger stamp differs from the one recorded when it was labelled
(its block was written since), so an analysis follows its store's updates.
"""

from __future__ import annotations

import numpy as np

from ..store.ledger import consecutive
from .model import Model
from .stations import StationInput


def _apply_chunk(raw: np.ndarray, model: Model) -> np.ndarray:
    return model.apply(raw)


def chunks_to_label(reader, name: str, s: StationInput) -> list[int]:
    """Chunks (blocks) of station ``s`` to label: those at or after the analysed end, and earlier ones
    whose ledger stamp differs from the one recorded when they were labelled (their block was
    written since: computed, recomputed from new data, or failed); every chunk when the analysis
    recorded no stamps (written before they existed)."""
    nchunks = -(-s.n // s.chunk)
    if s.key not in reader.analysis_stations(name):
        return list(range(nchunks))
    res = reader.analysis(name, s.key)
    if "block_stamp" not in res:
        return list(range(nchunks))
    labelled = np.asarray(res["block_stamp"].values, dtype=np.int64)
    n_labelled = min(int(res.sizes["time"]), len(labelled) * s.chunk)
    # A chunk with windows past the labelled end (new, or the old partial last one) is labelled whole.
    return [c for c in range(nchunks) if min((c + 1) * s.chunk, s.n) > n_labelled or labelled[c] != s.stamps[c]]


def apply_model(writer, name: str, model: Model, s: StationInput, chunks: list[int]) -> int:
    """Label chunks ``chunks`` of station ``s`` with ``model`` and write them through ``writer`` (a
    :class:`~scatflow.store.analysis_writer.AnalysisWriter`); returns windows written."""
    import dask.array as da
    import xarray as xr

    k = model.unmixing.shape[0]
    raw = s.raw(model.layout)
    out = da.map_blocks(_apply_chunk, raw, model, chunks=(raw.chunks[0], (k + 2,)), dtype=np.float64)
    times = s.ds["time"]
    written = 0
    for c0, c1 in ((g[0], g[-1] + 1) for g in consecutive(chunks)):
        a, b = c0 * s.chunk, min(c1 * s.chunk, s.n)
        part = out[a:b]
        ds = xr.Dataset(
            {
                "components": (("time", "component"), part[:, :k],
                               {"long_name": "independent components (X - mean) @ unmixing.T"}),
                "cluster": (("time",), part[:, k].astype(np.int32),
                            {"long_name": "KMeans label, -1 = no features"}),
                "distance": (("time",), part[:, k + 1],
                             {"long_name": "Euclidean distance to the cluster's centroid, component units"}),
            },
            coords={"time": times.isel(time=slice(a, b)).values, "component": np.arange(k)},
        )
        writer.write_windows(name, s.key, ds, a, s.chunk)
        written += b - a
    return written
