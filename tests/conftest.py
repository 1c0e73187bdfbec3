"""Shared fixtures; plain helpers are in helpers.py."""

import numpy as np
import pytest

# test_network_exactness and test_network_input import assert_close from here.
from helpers import assert_close  # noqa: F401


@pytest.fixture
def rng():
    return np.random.default_rng(20151204)


@pytest.fixture(scope="session")
def sds_archive(tmp_path_factory):
    """The synthetic two-day SDS archive of ``scatflow example --archive`` (shared, read-only)."""
    from scatflow.example import write_archive

    root = tmp_path_factory.mktemp("sds") / "archive"
    info = write_archive(root, days=2)
    return root, info
