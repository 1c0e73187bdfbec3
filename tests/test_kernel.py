"""Unit tests of the kernel's parts on small arrays: median, pooling indices, backend."""

import threading

import numpy as np
import pytest

from scatflow.scattering import kernel
from scatflow.scattering.kernel import cascade, numpy_backend
from scatflow.scattering.kernel.numpy_backend import NumpyBackend, median_inplace

BACKENDS = [kernel.NUMPY]
FLOATS = [np.float32, np.float64]


# -- median -------------------------------------------------------------------
def _median_cases(dtype, rng):
    tiny = np.finfo(dtype).smallest_subnormal
    yield "random", rng.random((4, 3, 9)).astype(dtype)
    yield "random-even", rng.random((4, 3, 10)).astype(dtype)
    yield "one-sample", rng.random((5, 1)).astype(dtype)
    yield "two-samples", rng.random((5, 2)).astype(dtype)
    yield "ties", rng.integers(0, 3, size=(6, 8)).astype(dtype)
    yield "ties-odd", np.array([[1, 1, 1, 2, 2], [0, 0, 0, 0, 0], [3, 1, 3, 1, 3]], dtype=dtype)
    yield "zeros", np.zeros((3, 6), dtype=dtype)
    yield "subnormals", np.array([[tiny, 0, 3 * tiny, 2 * tiny], [tiny, tiny, 0, 5 * tiny]], dtype=dtype)
    yield "mixed-scales", np.array([[tiny, 1e-30, 1.0, 1e30], [np.finfo(dtype).max, 0, 1, 2]], dtype=dtype)
    yield "sums-round", np.array([[1.0, 1.0 + np.finfo(dtype).eps], [0.1, 0.7]], dtype=dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_median_inplace_bitwise_equals_np_median(dtype):
    rng = np.random.default_rng(3)
    for name, a in _median_cases(dtype, rng):
        want = np.median(a, axis=-1)
        got = median_inplace(a.copy())
        assert got.dtype == want.dtype == dtype, name
        assert got.tobytes() == want.tobytes(), f"{name}: {got} != {want}"


def test_median_inplace_reorders_only_its_input():
    a = np.array([[3.0, 1.0, 2.0, 0.5]])
    b = a.copy()
    median_inplace(b)
    assert sorted(b[0]) == sorted(a[0])


# -- pooling indices ------------------------------------------------------------
@pytest.mark.parametrize("bins", [64, 65])
@pytest.mark.parametrize("alpha", [0.1, 0.5])
def test_pool_indices_select_the_reference_samples(bins, alpha):
    """scatseisnet pools layer l's l-times fftshift-ed scalogram where the taper is 1."""
    rng = np.random.default_rng(bins)
    m = rng.random((2, bins))
    taper = kernel.taper_window(bins, alpha)
    named = kernel.pool_indices(bins, alpha, 3)
    ordered = kernel.reference_indices(bins, alpha, 3)
    for level in range(3):
        shifted = m
        for _ in range(level + 1):
            shifted = np.fft.fftshift(shifted, axes=-1)
        want = shifted[..., taper == 1]
        np.testing.assert_array_equal(m[..., ordered[level]], want)
        assert np.all(np.diff(named[level]) > 0)
        np.testing.assert_array_equal(np.sort(m[..., named[level]]), np.sort(want))


def test_pool_indices_without_taper_or_flat_taper():
    assert kernel.pool_indices(32, None, 2) == [None, None]
    assert kernel.pool_indices(32, 0.0, 2) == [None, None]
    np.testing.assert_array_equal(kernel.reference_indices(8, None, 1)[0], np.roll(np.arange(8), 4))


@pytest.mark.parametrize("alpha, message", [(1.5, r"\[0, 1\]"), (-0.1, r"\[0, 1\]"), (1.0, "no sample")])
def test_check_taper_refuses(alpha, message):
    with pytest.raises(ValueError, match=message):
        kernel.check_taper(64, alpha)  # even length: a Hann window is 1 nowhere


def test_check_windows_any_leading_shape():
    assert kernel.check_windows(np.zeros((2, 3, 4, 8)), 8, allowed_ndim=None).shape == (2, 3, 4, 8)
    with pytest.raises(ValueError, match=r"\(\.\.\., 8\)"):
        kernel.check_windows(np.float64(1.0), 8, allowed_ndim=None)


# -- the backend interface --------------------------------------------------------
def test_numpy_backend_has_every_interface_member():
    wanted = {n for n in vars(cascade.Backend) if not n.startswith("_")}
    wanted |= set(cascade.Backend.__annotations__)
    assert wanted == {"name", "device", "group_bytes", "inner_batch", "asarray", "to_host", "empty",
                      "buffers", "forward", "multiply", "inverse", "modulus", "take", "reduce"}
    missing = [n for n in wanted if not hasattr(NumpyBackend, n)]
    assert not missing


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("bins", [15, 16])
def test_backend_transforms(xp, dtype, bins):
    rng = np.random.default_rng(bins)
    ctype = kernel.complex_dtype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    u = rng.standard_normal((3, bins)) + 10.0  # an offset: the DC bin matters
    bank = rng.standard_normal((2, bins)) + 1j * rng.standard_normal((2, bins))
    spec = xp.forward(xp.asarray(u, dtype))
    assert spec.shape == (3, bins) and spec.dtype == ctype
    full = np.fft.fft(u)
    np.testing.assert_allclose(xp.to_host(spec), full, rtol=0, atol=tol * np.abs(full).max())
    np.testing.assert_array_equal(spec[:, 1:], np.conj(spec[:, 1:][:, ::-1]))  # exactly Hermitian
    prod = xp.multiply(spec, xp.asarray(bank, ctype), out=xp.empty((3, 2, bins), ctype))
    assert prod.shape == (3, 2, bins)
    want = np.fft.ifft(np.fft.fft(u)[:, None] * bank)
    z = xp.inverse(prod)
    np.testing.assert_allclose(xp.to_host(z), want, rtol=0, atol=tol * np.abs(want).max())
    m = xp.modulus(z, out=xp.empty((3, 2, bins), dtype))
    assert m.dtype == dtype
    np.testing.assert_allclose(xp.to_host(m), np.abs(want), rtol=0, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("how", ["median", "max", "mean"])
def test_backend_take_and_reduce(xp, how):
    m = np.random.default_rng(1).random((2, 3, 11))
    idx = np.array([4, 0, 7])
    taken = xp.take(xp.asarray(m, m.dtype), xp.asarray(idx, np.intp))
    np.testing.assert_array_equal(xp.to_host(taken), m[..., idx])
    got = xp.reduce(xp.asarray(m.copy(), m.dtype), how)
    np.testing.assert_array_equal(xp.to_host(got), getattr(np, how)(m, axis=-1))


@pytest.mark.parametrize("xp", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("how", ["median", "max", "mean"])
@pytest.mark.parametrize("index", [
    [0, 1, 2, 3, 4, 5], [3, 4, 5, 6], [7, 8, 9, 10, 0, 1], [0, 1, 2, 8, 9, 10], [9, 10], [5],
    [4, 0, 7], [0, 2, 4, 6], [1, 2, 5, 6, 9, 10],  # three runs or no runs: gathered
], ids=str)
def test_backend_reduce_over_index_is_reduce_of_take(xp, dtype, how, index):
    """Pooling a sample set (slices for runs, a gather otherwise) equals pooling its gather, bit for bit."""
    m = np.random.default_rng(len(index)).random((3, 4, 11)).astype(dtype)
    m[0, 0, :] = 0.5  # ties
    idx = xp.asarray(np.array(index), np.intp)
    want = xp.reduce(xp.take(xp.asarray(m, dtype), idx), how)
    got = xp.reduce(xp.asarray(m.copy(), dtype), how, idx)
    assert got.dtype == want.dtype == dtype
    assert xp.to_host(got).tobytes() == xp.to_host(want).tobytes()


def test_contiguous_runs():
    runs = numpy_backend.contiguous_runs
    assert runs(np.array([3, 4, 5])) == [(3, 6)]
    assert runs(np.array([8, 9, 0, 1, 2])) == [(8, 10), (0, 3)]
    assert runs(np.array([0, 1, 5, 6, 9])) is None
    assert runs(np.array([0, 1, 5, 6, 9]), most=3) == [(0, 2), (5, 7), (9, 10)]
    assert runs(np.array([-2, -1])) is None and runs(np.array([], np.intp)) is None


def test_numpy_buffers_are_per_thread_and_reused():
    xp = NumpyBackend()
    shapes = ((2, 3, 8), (4, 1, 8))
    mine = xp.buffers(shapes, np.float32)
    assert mine is xp.buffers(shapes, np.float32)
    assert [b[0].dtype for b in mine] == [np.complex64] * 2 and mine[1][1].shape == (4, 1, 8)
    assert xp.buffers(shapes, np.float64)[0][0].dtype == np.complex128
    other = []
    t = threading.Thread(target=lambda: other.append(xp.buffers(shapes, np.float32)))
    t.start()
    t.join()
    assert other[0][0][0] is not mine[0][0]
    a = np.zeros((2, 4))
    assert xp.asarray(a, np.float64) is a and xp.to_host(a) is a


# -- the cascade over a backend -------------------------------------------------------
class _OneRowAtATime(NumpyBackend):
    """The NumPy backend with the smallest groups and batches: another schedule, same bits."""

    name = "numpy-one-row"
    group_bytes = 1
    inner_batch = 1


def _naive(x, spectra, reduce, taper_alpha):
    """The textbook cascade with full complex FFTs and scatseisnet's shifts."""
    bins = x.shape[-1]
    u = x.reshape(-1, bins)
    keep = np.ones(bins, bool) if taper_alpha is None else kernel.taper_window(bins, taper_alpha) == 1
    if taper_alpha is not None:
        u = u * kernel.taper_window(bins, taper_alpha)
    out = []
    for s in spectra:
        m = np.fft.fftshift(np.abs(np.fft.ifft(np.fft.fft(u)[:, None] * s)), axes=-1)
        out.append(reduce(m[..., keep], axis=-1))
        u = m.reshape(-1, bins)
    return out


@pytest.mark.parametrize("taper_alpha", [None, 0.3])
@pytest.mark.parametrize("reduce", [np.median, np.max, np.mean])
def test_scatter_small_against_textbook_and_schedules(reduce, taper_alpha):
    rng = np.random.default_rng(5)
    bins = 33
    x = rng.standard_normal((5, 2, bins))
    spectra = [np.fft.fft(rng.standard_normal((n, bins)) * np.hanning(bins)) for n in (3, 2)]
    name = kernel.resolve_reduce(reduce)
    got = kernel.scatter(x, spectra, name, taper_alpha, threads=1)
    for g, w in zip(got, _naive(x, spectra, reduce, taper_alpha)):
        np.testing.assert_allclose(g.reshape(-1, g.shape[-1]), w, rtol=1e-12, atol=1e-12 * np.abs(w).max())
    other = kernel.scatter(x, spectra, name, taper_alpha, threads=2, backend=_OneRowAtATime())
    for g, o in zip(got, other):
        assert g.tobytes() == o.tobytes()


def test_scatter_unpooled_and_callable_in_reference_order():
    rng = np.random.default_rng(6)
    bins = 20
    x = rng.standard_normal((2, 1, bins))
    spectra = [np.fft.fft(rng.standard_normal((2, bins))) for _ in range(2)]
    p90 = lambda a, axis: np.percentile(a, 90, axis=axis)  # noqa: E731
    for reduce in (p90, None):
        want = _naive(x, spectra, p90 if reduce else (lambda a, axis: a), 0.2)
        got = kernel.scatter(x, spectra, reduce, 0.2, threads=1)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.reshape(w.shape), w, rtol=1e-12, atol=1e-13)


def test_group_bytes_is_the_backend_default():
    assert kernel.NUMPY.group_bytes == numpy_backend.GROUP_BYTES
    assert kernel.NUMPY.inner_batch == numpy_backend.INNER_BATCH


# -- the same bits on every processor ---------------------------------------------
_TRANSFORMS = """
import scatflow
net = scatflow.ScatteringNetwork({"octaves": 4, "resolution": 4, "quality": 2},
                                 {"octaves": 4, "resolution": 1, "quality": 2},
                                 bins=256, sampling_rate=50.0)
x = np.random.default_rng(5).standard_normal((6, 2, 256))
OUT.update({f"bank{i}": b.spectra for i, b in enumerate(net.banks)})
for dtype in (np.float64, np.float32):
    for how in ("median", "max", "mean"):
        for taper in (None, 0.2):
            s1, s2 = net.transform(x, reduce_type=how, taper_alpha=taper, dtype=dtype, threads=1)
            key = f"{np.dtype(dtype).name}-{how}-{taper}"
            OUT[key + "-1"], OUT[key + "-2"] = s1, s2
"""


def test_coefficients_are_the_same_bits_with_and_without_avx512(tmp_path):
    """A store computed across nodes with and without AVX-512 must equal one computed on either.

    NumPy picks processor-specific code at run time; its AVX-512 real ``exp``
    differs in the last bits from its AVX2 one, which once made the wavelet
    bank, and so every coefficient, depend on the node.
    """
    from helpers import bits_differing_without_avx512

    differ = bits_differing_without_avx512(tmp_path, _TRANSFORMS)
    assert not differ, f"bits differ with AVX-512 off: {differ}"


def test_numerics_names_the_code_path_that_sets_the_bits():
    """AVX2 and AVX-512 share a line (same bits); NumPy without AVX2 gets another."""
    import os
    import platform
    import subprocess
    import sys

    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the code-path classes are named for x86 processors")
    line = kernel.numerics()
    assert line.startswith(f"numpy {np.__version__}, scipy ")
    has_avx2 = bool(__cpu_features__.get("AVX2"))
    assert line.endswith("x86-64 AVX2" if has_avx2 else "x86-64 baseline"), line
    env = dict(os.environ, NPY_DISABLE_CPU_FEATURES=" ".join(__cpu_dispatch__))
    child = subprocess.run([sys.executable, "-c", "from scatflow.scattering import kernel; print(kernel.numerics())"],
                           env=env, check=True, capture_output=True, text=True).stdout.strip()
    assert child == line.rsplit(", ", 1)[0] + ", x86-64 baseline"
