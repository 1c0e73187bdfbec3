"""Design files: JSON round trip, scatseisnet pickles without scatseisnet, hostile pickles."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import scatflow

LAYERS = [
    {"octaves": 4, "resolution": 4, "quality": 2, "normalize_wavelet": "L1"},
    {"octaves": 4, "resolution": 1, "quality": 3},
]


def test_json_round_trip(tmp_path):
    net = scatflow.ScatteringNetwork(*LAYERS, bins=300, sampling_rate=25.0)
    path = tmp_path / "design.json"
    net.save(path)
    design = json.loads(path.read_text())  # human-readable JSON
    assert design["bins"] == 300 and design["layers"][0]["normalize_wavelet"] == "L1"
    back = scatflow.load_network(path)
    assert back == net
    x = np.random.default_rng(1).standard_normal((2, 3, 300))
    for a, b in zip(net.transform(x), back.transform(x)):
        np.testing.assert_array_equal(a, b)


def test_json_errors_name_the_problem(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "scatflow-network", "version": 1, "bins": 64, "layers": []}')
    with pytest.raises(ValueError, match="layers"):
        scatflow.load_network(path)
    path.write_text('{"format": "scatflow-network", "version": 1, "bins": 64, "layers": [{"octaves": 2}]}')
    with pytest.raises(ValueError, match="sampling_rate"):
        scatflow.load_network(path)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("norm", [None, "L1", "L2"])
def test_scatseisnet_pickle_read_without_scatseisnet(tmp_path, protocol, norm):
    scatseisnet = pytest.importorskip("scatseisnet")
    layers = [dict(LAYERS[0], normalize_wavelet=norm), LAYERS[1]]
    ref = scatseisnet.ScatteringNetwork(*layers, bins=256, sampling_rate=50.0)
    path = tmp_path / "scattering_network.pickle"
    with open(path, "wb") as fh:  # as the scatseisnet tutorial saves it
        pickle.dump(ref, fh, protocol=protocol)
    # A fresh interpreter in which importing scatseisnet fails.
    code = (
        "import sys, json; sys.modules['scatseisnet'] = None\n"
        "import scatflow\n"
        f"net = scatflow.load_network({str(path)!r})\n"
        "assert 'scatseisnet.network' not in sys.modules\n"
        "print(json.dumps(net.design()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    design = json.loads(out.stdout)
    assert design["bins"] == 256 and design["sampling_rate"] == 50.0
    assert design["layers"][0]["normalize_wavelet"] == norm
    net = scatflow.load_network(path)
    x = np.random.default_rng(2).standard_normal((2, 3, 256))
    got = net.transform(x, reduce_type=np.median)
    want = ref.transform(x.copy(), reduce_type=np.median)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_that_runs_code_is_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "scattering_network.pickle"
    path.write_bytes(pickle.dumps(_Exploit(marker), protocol=protocol))
    with pytest.raises(ValueError, match=r"refusing to load global '(posix|os|nt)\.system'"):
        scatflow.load_network(path)
    assert not marker.exists()
    # The same bytes really do run code through plain pickle: the refusal is what saved us.
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_pickle_of_other_object_refused(tmp_path):
    path = tmp_path / "other.pickle"
    path.write_bytes(pickle.dumps({"bins": 128}))
    with pytest.raises(ValueError, match="does not hold a scatseisnet ScatteringNetwork"):
        scatflow.load_network(path)
    path.write_bytes(b"\x80\x05garbage")
    with pytest.raises(ValueError, match="other.pickle"):
        scatflow.load_network(path)


def test_tampered_pickle_spectra_refused(tmp_path):
    scatseisnet = pytest.importorskip("scatseisnet")
    ref = scatseisnet.ScatteringNetwork(*LAYERS, bins=128, sampling_rate=50.0)
    ref.banks[1].spectra = ref.banks[1].spectra * 1.01
    path = tmp_path / "n.pickle"
    path.write_bytes(pickle.dumps(ref))
    with pytest.raises(ValueError, match="bank 1's stored spectra do not match"):
        scatflow.load_network(path)
