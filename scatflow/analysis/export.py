"""``scatflow export``: an analysis's results as a table, one row per window.

Rows are written station by station and chunk by chunk, so memory stays bounded
whatever the span. Nothing here writes Zarr.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import StoreError

#: Windows read and written at once (bounded memory).
ROWS_PER_PART = 200_000
#: Output formats by file extension.
FORMATS = (".csv", ".parquet")


def _iso(t: np.ndarray) -> np.ndarray:
    return np.char.add(np.datetime_as_string(t.astype("datetime64[ns]"), unit="ms"), "Z")


def _frames(reader, name: str, iso: bool = True):
    """One DataFrame per part of each station: times as ISO strings (``iso``) or UTC timestamps."""
    import pandas as pd

    joint = bool((reader.analysis_attrs(name) or {}).get("joint", True))

    def times(t):
        return _iso(t) if iso else pd.DatetimeIndex(t.astype("datetime64[ns]")).tz_localize("UTC")

    for key in reader.analysis_stations(name):
        res = reader.analysis(name, key)
        window = reader.station(key).window if key in reader.stations else np.timedelta64(0, "ns")
        n = res.sizes["time"]
        for a in range(0, n, ROWS_PER_PART):
            part = res.isel(time=slice(a, min(a + ROWS_PER_PART, n))).load()
            t = part["time"].values
            # Cluster numbers of one model per station are unrelated across stations: say whose they are.
            cols = {"station": np.full(len(t), key, dtype=object),
                    "model": np.full(len(t), "joint" if joint else key, dtype=object),
                    "start": times(t), "end": times(t + window),
                    "cluster": part["cluster"].values.astype(np.int32),
                    "distance": part["distance"].values}
            comps = part["components"].values
            for j in range(comps.shape[1]):
                cols[f"component_{j}"] = comps[:, j]
            yield pd.DataFrame(cols)


def export_analysis(store, name: str, output) -> tuple[str, int]:
    """Write analysis ``name`` of ``store`` as CSV (``.csv``) or Parquet (``.parquet``).

    Parameters
    ----------
    store : str or PathLike
        The scatflow store.
    name : str
        The analysis (group ``analysis/<name>``).
    output : str or PathLike
        The table to write.

    Returns
    -------
    (str, int)
        The path written and the number of rows: one per window, with ``station``, ``model``
        (``joint``, or the station whose own model labelled the window: cluster numbers of
        different models are unrelated), ``start`` and ``end`` (UTC; ISO 8601 strings with ms in
        CSV, timestamps in Parquet), ``cluster`` (-1 = no features), ``distance`` (to the
        centroid, component units) and ``component_0``... (dimensionless).

    Raises
    ------
    StoreError
        Not a store, no such analysis, an output that is neither ``.csv`` nor ``.parquet``, an
        unwritable output, or Parquet without pyarrow.
    """
    from ..store.reader import StoreReader

    reader = StoreReader(store)
    reader.analysis(name)  # one line naming the analyses there are, if absent
    out = os.fspath(output)
    ext = os.path.splitext(out)[1].lower()
    if ext not in FORMATS:
        raise StoreError(f"{out}: unknown output format {ext or '(no extension)'!r}; "
                         f"export writes {' or '.join(FORMATS)} files")
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise StoreError(f"cannot write {out}: directory {out_dir} does not exist")
    rows = 0
    if ext == ".parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise StoreError(f"{out}: Parquet output needs pyarrow (pip install pyarrow); "
                             "or give a .csv output") from None
        writer = None
        try:
            for df in _frames(reader, name, iso=False):
                table = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(out, table.schema)
                writer.write_table(table)
                rows += len(df)
        finally:
            if writer is not None:
                writer.close()
        return out, rows
    with open(out, "w", newline="") as fh:
        header = True
        for df in _frames(reader, name):
            df.to_csv(fh, index=False, header=header, float_format="%.9g")
            header = False
            rows += len(df)
    return out, rows


__all__ = ["export_analysis"]
