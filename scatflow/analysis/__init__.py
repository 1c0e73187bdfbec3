"""Downstream analysis of a store: features, independent components and clusters.

Owns ``scatflow analyze`` (``[analysis]``): features from the coefficients,
the seeded fitting sample, FastICA and KMeans fitting, the model's stored form,
labelling chunks with a stored model, the summary, the figures (``plot``) and
the export. It reads through :mod:`scatflow.store` and writes through its
analysis writer; it never imports the workflow.
"""
