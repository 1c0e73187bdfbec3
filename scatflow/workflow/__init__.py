"""The run: planning, block tasks, the scheduling loop and the clusters that execute them.

Owns the plan (``plan``: the store's design, which blocks to compute), a
worker's block task (``blocks``), the driver's loop and run record (``run``),
the in-memory API :func:`scatflow.transform_stream` (``stream``) and the Dask
clusters (``cluster``, local, a running scheduler or SLURM/PBS/SGE). It may
import the scattering network, inputs and the store; never analysis, nor the
command line.
"""
