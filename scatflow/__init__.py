"""scatflow: scattering-network features from continuous seismic archives.

The public surface: :class:`ScatteringNetwork` (a drop-in for scatseisnet's),
:func:`load_network` (JSON designs and scatseisnet pickles) and
:func:`open_results` (a finished store as an ``xarray.DataTree``).
"""

__version__ = "0.1.0"

from .design import load_network  # noqa: E402
from .network import MorletBank, ScatteringNetwork  # noqa: E402

__all__ = ["MorletBank", "ScatteringNetwork", "load_network", "__version__"]
