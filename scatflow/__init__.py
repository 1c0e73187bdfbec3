"""scatflow: scattering-network features from continuous seismic archives.

The public surface: :class:`ScatteringNetwork` (a drop-in for scatseisnet's),
:func:`load_network` (JSON designs and scatseisnet pickles) and
:func:`open_results` (a finished store as an ``xarray.DataTree``).
"""

__version__ = "0.1.0"

from .design import load_network  # noqa: E402
from .network import MorletBank, ScatteringNetwork  # noqa: E402
from .workflow import transform_stream  # noqa: E402


def open_results(path):
    """Open a scatflow store as an ``xarray.DataTree`` (one node per station).

    Parameters
    ----------
    path : str or path-like
        The Zarr store directory.
    """
    import xarray as xr

    return xr.open_datatree(path, engine="zarr")


__all__ = ["MorletBank", "ScatteringNetwork", "load_network", "open_results", "transform_stream", "__version__"]
