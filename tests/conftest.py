"""Shared test helpers."""

import numpy as np
import pytest


def assert_close(got, ref, rtol=1e-10, atol=1e-12, what="array"):
    """The project's comparison: |a-b| <= rtol*|b| + atol*max|b| (per array)."""
    got = np.asarray(got)
    ref = np.asarray(ref)
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    assert np.isfinite(got).all(), f"{what}: non-finite values"
    scale = np.abs(ref).max()
    err = np.abs(got - ref)
    bound = rtol * np.abs(ref) + atol * scale
    bad = err > bound
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} elements out of tolerance; "
        f"worst |a-b|/max|b| = {(err / scale).max():.3e}"
    )


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
