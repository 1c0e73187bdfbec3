"""Bad input to the network gives a ValueError that says what is wrong."""

import numpy as np
import pytest

import scatflow

LAYERS = [{"octaves": 3, "resolution": 2, "quality": 2}, {"octaves": 3, "resolution": 1, "quality": 2}]


@pytest.fixture
def net():
    return scatflow.ScatteringNetwork(*LAYERS, bins=128, sampling_rate=10.0)


@pytest.mark.parametrize(
    "x, message",
    [
        (np.zeros((4, 3, 100)), "128 samples"),
        (np.zeros((4, 3, 2, 128)), "shape"),
        (np.zeros((128,)), "shape"),
        (np.zeros((0, 3, 128)), "empty batch"),
        (np.zeros((4, 0, 128)), "empty batch"),
        (np.array([["a"] * 128]), "real numbers"),
        (np.zeros((2, 128), dtype=complex), "real numbers"),
        (np.zeros((2, 128), dtype=bool), "real numbers"),
    ],
)
def test_bad_windows(net, x, message):
    with pytest.raises(ValueError, match=message):
        net.transform(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(net, bad):
    x = np.zeros((3, 2, 128))
    x[1, 1, 7] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite samples \(first at index \(1, 1, 7\)\)"):
        net.transform(x)


def test_masked_samples_refused(net):
    x = np.ma.masked_array(np.zeros((2, 128)), mask=np.zeros((2, 128), bool))
    net.transform(x)  # nothing masked: accepted
    x.mask[0, 5] = True
    with pytest.raises(ValueError, match="masked"):
        net.transform(x)


def test_integer_input_accepted(net):
    rng = np.random.default_rng(0)
    xi = rng.integers(-1000, 1000, size=(3, 2, 128)).astype(np.int32)
    got = net.transform(xi)
    ref = net.transform(xi.astype(np.float64))
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a, b)


def test_bad_design():
    with pytest.raises(ValueError, match="normalize_wavelet"):
        scatflow.ScatteringNetwork({"octaves": 2, "resolution": 1, "quality": 1, "normalize_wavelet": "L3"})
    with pytest.raises(ValueError, match="octaves"):
        scatflow.ScatteringNetwork({"octaves": 0, "resolution": 1, "quality": 1})
    with pytest.raises(ValueError, match="quality"):
        scatflow.ScatteringNetwork({"octaves": 2, "resolution": 1, "quality": -1})
    with pytest.raises(ValueError, match="unknown bank keyword"):
        scatflow.ScatteringNetwork({"octaves": 2, "resolutoin": 1})
    with pytest.raises(ValueError, match="at least one layer"):
        scatflow.ScatteringNetwork()


def test_bad_pooling_and_dtype(net):
    x = np.zeros((1, 128))
    with pytest.raises(ValueError, match="reduce"):
        net.transform(x, reduce_type="average")
    with pytest.raises(ValueError, match="float32 or float64"):
        net.transform(x, dtype=np.int16)
    with pytest.raises(ValueError, match="taper_alpha"):
        net.transform(x, taper_alpha=1.5)


def test_shapes_and_len(net):
    s1, s2 = net.transform(np.ones((5, 3, 128)))
    assert s1.shape == (5, 3, 6) and s2.shape == (5, 3, 6, 3)
    assert len(net) == 2 and len(net.banks[0]) == 6
    assert net.shapes == [(6,), (6, 3)]


@pytest.mark.parametrize("keyword", ["bin", "sampling_rat", "sample_rate", "taper_alpha"])
def test_unknown_network_keyword_refused(keyword):
    with pytest.raises(TypeError, match=repr(keyword)):
        scatflow.ScatteringNetwork(*LAYERS, bins=128, sampling_rate=10.0, **{keyword: 2000})


def test_every_scatseisnet_keyword_accepted():
    scatseisnet = pytest.importorskip("scatseisnet")
    import inspect

    theirs = inspect.signature(scatseisnet.ScatteringNetwork.__init__).parameters
    keywords = {k: p.default for k, p in theirs.items() if p.kind is p.KEYWORD_ONLY}
    assert set(keywords) == {"bins", "sampling_rate", "verbose"}
    net = scatflow.ScatteringNetwork(*LAYERS, **keywords)
    assert net.bins == 128 and net.sampling_rate == 1.0 and net.verbose is False
