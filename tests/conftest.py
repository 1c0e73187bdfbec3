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


@pytest.fixture(scope="session")
def s3server(tmp_path_factory):
    """A real S3 server (SeaweedFS) on 127.0.0.1 for the whole session, its data removed at the
    end. Skips when ``weed`` cannot start, except where SCATFLOW_REQUIRE_S3 is set (CI): there
    the tests fail."""
    import os

    from s3server import SeaweedServer

    server = SeaweedServer(str(tmp_path_factory.mktemp("weed")))
    try:
        server.start()
    except RuntimeError as exc:
        if os.environ.get("SCATFLOW_REQUIRE_S3"):
            pytest.fail(f"an S3 server is required here (SCATFLOW_REQUIRE_S3) but: {exc}")
        pytest.skip(f"no S3 test server: {exc}")
    yield server
    server.stop()


@pytest.fixture
def s3url(s3server, request):
    """A fresh ``s3://`` prefix on the test server for this test: ``s3://BUCKET/<test>-<n>``."""
    import re
    import uuid

    from s3server import BUCKET

    name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name)[:60]
    return f"s3://{BUCKET}/{name}-{uuid.uuid4().hex[:8]}"
