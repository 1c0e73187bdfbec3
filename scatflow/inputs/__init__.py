"""Inputs: from waveform files to samples on a window grid.

Owns where data comes from (``sources``: file globs and SDS archives;
``wavefile``: reading one file, checked), the window and block arithmetic
(``grid``), samples onto the grid's lattice with coverage (``windows``), and
``[preprocess]`` (``preprocess``: settings, pad and the processing of runs of
data; ``epochs``: which response applies to each sample; ``prechecks``:
settings that cannot apply to a channel). It may import
:mod:`scatflow.scattering` and :mod:`scatflow.errors`, never the store, the
workflow or analysis.
"""
