"""scatflow: scattering-network features from continuous seismic archives."""

__version__ = "0.1.0"
