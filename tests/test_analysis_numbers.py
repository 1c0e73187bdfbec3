"""``scatflow analyze`` against the tutorials' procedure (scikit-learn on scatseisnet 0.4.1's
coefficients), and float32 against float64 stores, on the whole example day (4319 windows).

A shorter span is not enough: on six hours (1079 windows) the components agree as well (6.6e-4 of
the largest value) but KMeans' single k-means++ start lands elsewhere for 2.5 % of the windows."""

import numpy as np
import obspy
import pytest
from helpers import TUTORIAL_LAYERS, n_windows

from scatflow.analysis.analyze import analyze
from scatflow.config import parse_config
from scatflow.workflow.plan import make_plan
from scatflow.store.reader import StoreReader
from scatflow.workflow.run import execute_here, prepare_store
from scatflow.store.writer import Store
from scatflow.synthetic import write_day

START = obspy.UTCDateTime("2015-12-04T00:00:00")
HOURS = 24
WINDOWS = n_windows(HOURS * 3600, 40.0, 20.0)  # 4319
GROUP = "X9.SV13."


def config(day, store, dtype, **analysis):
    return parse_config({
        "input": {"paths": [str(day)], "start": str(START)[:19], "end": str(START + HOURS * 3600)[:19]},
        "network": {"window_s": 40.0, "overlap": 0.5, "layers": TUTORIAL_LAYERS},
        "output": {"store": str(store), "dtype": dtype},
        "analysis": analysis,
    })


def build(cfg):
    """The store of ``cfg``, blocks computed in this process (no cluster)."""
    store = Store(cfg.output["store"])
    plan = make_plan(cfg, store)
    store.open_or_create(plan.design.record())
    prepare_store(plan, store)
    results = execute_here(plan)
    assert all(r.ok for r in results), [r.error for r in results]
    return store


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    root = tmp_path_factory.mktemp("numbers")
    path = root / "X9.SV13..HH.mseed"
    write_day(path, start=str(START), sampling_rate=50.0, duration_s=HOURS * 3600 + 1 / 50.0)
    stores = {dtype: build(config(path, root / f"{dtype}.zarr", dtype)).path for dtype in ("float32", "float64")}
    return root, path, stores


def tutorial_features(path):
    """Tutorials 4 and 6, step by step, on scatseisnet 0.4.1's coefficients of every window."""
    scatseisnet = pytest.importorskip("scatseisnet")
    from sklearn.cluster import KMeans
    from sklearn.decomposition import FastICA

    stream = obspy.read(str(path))
    segments = []
    for window in stream.slide(window_length=40.0, step=20.0):
        segments.append(np.array([tr.data[:2000] for tr in window], dtype=float))
    segments = np.array(segments)
    assert len(segments) == WINDOWS
    net = scatseisnet.ScatteringNetwork(*TUTORIAL_LAYERS, bins=2000, sampling_rate=50.0)
    order_1, order_2 = net.transform(segments, reduce_type=np.median)
    coefficients = np.hstack((order_1.reshape(len(order_1), -1), order_2.reshape(len(order_2), -1)))
    coefficients = np.log10(coefficients)
    coefficients = (coefficients - coefficients.min()) / (coefficients.max() - coefficients.min())
    features = FastICA(n_components=4, whiten="unit-variance", random_state=42).fit_transform(coefficients)
    labels = KMeans(n_clusters=4, n_init="auto", random_state=4).fit(features).predict(features)
    return features, labels


def analysed(store_path, tmp_cfg, name, **analysis):
    analyze(config(tmp_cfg, store_path, "float64", name=name, **analysis), log=lambda m: None)
    res = StoreReader(store_path).analysis(name, GROUP).load()
    return res["components"].values, res["cluster"].values


@pytest.mark.slow
def test_fidelity_with_the_tutorials_procedure(day):
    root, path, stores = day
    ref_comp, ref_labels = tutorial_features(path)
    comp, labels = analysed(stores["float64"], path, "tutorial", log_floor=0, normalize="minmax", sample=5000)
    assert comp.shape == ref_comp.shape and (labels >= 0).all()
    err = np.abs(comp - ref_comp).max(axis=0) / np.abs(ref_comp).max(axis=0)
    print(f"fidelity: max |difference| per component / max |component| = {err}")
    assert (err <= 2e-3).all(), err
    same = float((labels == ref_labels).mean())
    print(f"fidelity: same labels for {100 * same:.3f} % of {WINDOWS} windows")
    assert same >= 0.999


@pytest.mark.slow
def test_float32_and_float64_stores_give_the_same_clusters(day, capsys):
    from sklearn.metrics import adjusted_rand_score

    root, path, stores = day
    _, l64 = analysed(stores["float64"], path, "floor")
    _, l32 = analysed(stores["float32"], path, "floor")
    ari = adjusted_rand_score(l64, l32)
    _, z64 = analysed(stores["float64"], path, "plain", log_floor=0)
    _, z32 = analysed(stores["float32"], path, "plain", log_floor=0)
    ari0 = adjusted_rand_score(z64, z32)
    with capsys.disabled():
        print(f"\nprecision: adjusted Rand float32 vs float64, log_floor 1e-4: {ari:.4f}; log_floor 0: {ari0:.4f}")
    assert ari >= 0.99, ari


def test_explained_variance_is_sklearns_variance_weighted_score():
    """The explained variance printed and stored is scikit-learn's variance-weighted score of the
    reconstruction: a feature that is constant but for rounding (an order-2 path at the noise floor,
    under the log floor), into which the reconstruction leaks a little, cannot drive it below zero,
    as the plain mean over features did."""
    from sklearn.metrics import explained_variance_score

    from scatflow.analysis.fit import _explained_variance

    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 12)) @ rng.standard_normal((12, 12))
    x[:, 5] = -4.0 + 1e-15 * rng.standard_normal(3000)  # constant but for rounding
    x[:, 7] = 2.5  # constant
    mean = x.mean(0)
    unmixing = rng.standard_normal((4, 12))
    mixing = np.linalg.pinv(unmixing)
    mixing[5] = 1e-9  # the reconstruction's leak into the flat feature, far above its variance
    recon = (x - mean) @ unmixing.T @ mixing.T + mean
    got = _explained_variance(x, mean, unmixing, mixing, rows=700)
    want = explained_variance_score(x, recon, multioutput="variance_weighted")
    assert abs(got - want) < 1e-12 and -1 < got < 1, (got, want)
    assert explained_variance_score(x, recon) < -1e6  # the plain mean: the flat feature dominates
