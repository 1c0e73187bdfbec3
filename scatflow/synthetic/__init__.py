"""Synthetic example data: what ``scatflow example`` writes (nothing is downloaded).

Owns the generated day and SDS archive with their StationXML (``example``),
the configs written beside them (``configs``), the signal model behind them
(``model``) and stores of known contents for tests and benchmarks (``store``). It may import everything below the command
line. ``scatflow.synthetic.synthetic_day`` and ``write_day`` are public.
"""

from .configs import ARCHIVE_CONFIG, EXAMPLE_CONFIG
from .example import station_inventory, synthetic_day, write_archive, write_day, write_inventory

__all__ = ["synthetic_day", "write_day", "write_archive", "station_inventory", "write_inventory", "EXAMPLE_CONFIG",
           "ARCHIVE_CONFIG"]
