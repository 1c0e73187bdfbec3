"""scatflow: scattering-network features from continuous seismic archives.

The public surface: :class:`ScatteringNetwork` (a drop-in for scatseisnet's),
:func:`load_network` (JSON designs and scatseisnet pickles) and
:func:`open_results` (a finished store as an ``xarray.DataTree``).
"""

__version__ = "0.3.0"

# Imported on first use (PEP 562): ``scatflow.cli`` and the worker processes it spawns then
# start without paying ~0.8 s for obspy, xarray and zarr before they need them.
_LAZY = {
    "load_network": ".scattering.design",
    "MorletBank": ".scattering.bank",
    "ScatteringNetwork": ".scattering.network",
    "transform_stream": ".workflow.stream",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scatflow' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def open_results(path, combine: bool = False, storage_options: dict | None = None):
    """Open a scatflow store: an ``xarray.DataTree`` (one node per station), or one Dataset.

    Parameters
    ----------
    path : str or path-like
        The Zarr store directory, or its URL (``s3://bucket/prefix``).
    combine : bool
        Return one lazy ``xarray.Dataset`` with a ``station`` dimension instead,
        channels matched by component (``Z``, ``N``, ``E``...), full SEED ids in ``seed_id``. The
        stations must share their frequency axes (one sampling rate: see
        ``[preprocess] sampling_rate``); a StoreError names those that do not.
    storage_options : dict, optional
        Connection settings for a URL, with s3fs's names (``endpoint_url``, ``anon``, ``key``,
        ``secret``...); credentials may instead come from the ``AWS_*`` environment variables.
    """
    import xarray as xr

    from .location import as_location
    from .store.access import zarr_store

    path = as_location(path, storage_options)

    if combine:
        from .store.reader import combine_stations

        return combine_stations(path)
    from .store.reader import StoreReader

    StoreReader(path)  # a store of another format is refused here, in one line
    return xr.open_datatree(zarr_store(path), engine="zarr")


__all__ = ["MorletBank", "ScatteringNetwork", "load_network", "open_results", "transform_stream", "__version__"]
