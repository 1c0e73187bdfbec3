"""Shared fixtures; plain helpers are in helpers.py."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20151204)


@pytest.fixture(scope="session")
def sds_archive(tmp_path_factory):
    """The synthetic two-day SDS archive of ``scatflow example --archive`` (shared, read-only)."""
    from scatflow.synthetic import write_archive

    root = tmp_path_factory.mktemp("sds") / "archive"
    info = write_archive(root, days=2)
    return root, info


@pytest.fixture(autouse=True)
def _dask_cluster_needs_slow_marker(request, monkeypatch):
    """A test not marked ``slow`` that starts a Dask cluster or client in this process fails, so
    ``-m "not slow"`` stays fast. (Clusters started in a subprocess are not seen: mark those by hand.)"""
    if request.node.get_closest_marker("slow"):
        yield
        return
    import distributed
    from distributed.deploy.cluster import Cluster

    started = []
    for cls in (Cluster, distributed.Client):
        original = cls.__init__

        def watched(self, *args, __original=original, **kwargs):
            started.append(type(self).__name__)
            return __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", watched)
    yield
    if started:
        pytest.fail(f"{request.node.nodeid} started a Dask {started[0]} but is not marked slow", pytrace=False)
