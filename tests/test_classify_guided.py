"""Edge smoothing of the pixel classifier's probabilities: the guided filter (issue 24)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_interfaces.classify.guided import guided_smooth
from napari_interfaces.classify.model import PixelClassifier
from napari_interfaces.classify.workflow import apply_classifier, classify_image


def _reference(p: np.ndarray, g: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He, Sun & Tang's guided filter written out window by window (borders reflected)."""
    h, w = g.shape
    pad = r + r  # the coefficients' windows reach r further than the output's
    gp = np.pad(g, pad, mode="symmetric")
    pp = np.pad(p, pad, mode="symmetric")
    n = 2 * r + 1
    a = np.zeros((h + 2 * r, w + 2 * r))
    b = np.zeros_like(a)
    for y in range(h + 2 * r):
        for x in range(w + 2 * r):
            wi = gp[y : y + n, x : x + n]
            wp = pp[y : y + n, x : x + n]
            cov = (wi * wp).mean() - wi.mean() * wp.mean()
            a[y, x] = cov / (wi.var() + eps)
            b[y, x] = wp.mean() - a[y, x] * wi.mean()
    out = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            out[y, x] = a[y : y + n, x : x + n].mean() * g[y, x] + b[y : y + n, x : x + n].mean()
    return out


def test_exact_filter_is_the_published_formula():
    """step=1 is He et al.'s filter: ``mean(a) * I + mean(b)`` with the window regressions."""
    rng = np.random.default_rng(0)
    g = rng.random((20, 23)).astype(np.float32)
    p0 = rng.random((20, 23)).astype(np.float32)
    p = np.stack([p0, 1.0 - p0], -1)
    got = guided_smooth(p.copy(), g, radius=2, eps=1e-2, step=1)
    ref = np.stack([_reference(p[..., k], g, 2, 1e-2) for k in range(2)], -1)
    ref = np.clip(ref, 1e-6, None)
    ref /= ref.sum(-1, keepdims=True)
    assert np.abs(got - ref).max() < 1e-4


def test_keeps_an_edge_and_removes_a_speckle():
    g = np.zeros((64, 64), np.float32)
    g[:, 30:] = 1.0
    p = np.zeros((64, 64, 2), np.float32)
    p[:, :30] = [0.7, 0.3]
    p[:, 30:] = [0.3, 0.7]
    p[20, 10] = p[21, 10] = [0.35, 0.65]  # two wrong pixels in a flat region
    q = guided_smooth(p.copy(), g, radius=4, eps=1e-3, step=2)
    lab = q.argmax(-1)
    assert (lab[:, :30] == 0).all() and (lab[:, 30:] == 1).all()  # edge exactly where it was
    np.testing.assert_allclose(q.sum(-1), 1.0, atol=1e-5)
    assert guided_smooth(p.copy(), g, radius=0) is not None  # radius 0: unchanged
    np.testing.assert_array_equal(guided_smooth(p.copy(), g, radius=0), p)
    with pytest.raises(ValueError, match="guide"):
        guided_smooth(p, g[:10])


def _blobs():
    yy, xx = np.mgrid[:128, :128]
    truth = ((np.sin(yy / 9.0) + np.cos(xx / 7.0)) > 0.3).astype(np.int64)
    img = truth + np.random.default_rng(0).normal(0, 0.5, truth.shape)
    s = np.zeros(truth.shape, np.int64)
    s[::16, ::16] = truth[::16, ::16] + 1  # sparse dots of both phases
    return img, truth, s


def test_edge_smoothing_raises_accuracy_on_noisy_phases(tmp_path):
    """Blobs under noise as strong as their contrast: the default (guided filter on) labels
    more pixels right than the same classifier without it (0.982 against 0.971 measured)."""
    img, truth, s = _blobs()
    on = classify_image(img, s)
    off = classify_image(img, s, edge_smoothing=False)
    assert on.model.edge_smoothing == 6.0 and off.model.edge_smoothing == 0.0
    acc_on = ((on.labels - 1) == truth).mean()
    acc_off = ((off.labels - 1) == truth).mean()
    assert acc_on > acc_off + 0.005 and acc_on > 0.975, (acc_off, acc_on)
    # saved with the classifier; a classifier saved before the setting existed loads without it
    js, _ = on.model.save(tmp_path / "m")
    back = PixelClassifier.load(js)
    assert back.edge_smoothing == 6.0
    assert np.array_equal(apply_classifier(back, img).labels, on.labels)
    meta = json.loads(js.read_text())
    del meta["forest"]["edge_smoothing"]
    js.write_text(json.dumps(meta))
    old = PixelClassifier.load(js)
    assert old.edge_smoothing == 0.0
    assert np.array_equal(apply_classifier(old, img).labels, off.labels)


def test_radius_follows_the_pixel_size(monkeypatch):
    """Applied to an image with half the pixel size, the window is twice as wide in pixels."""
    import napari_interfaces.classify.guided as guided

    img, _, s = _blobs()
    res = classify_image(img, s, pixel_size=2.0, unit="Å")
    radii = []
    real = guided.guided_smooth

    def spy(p, g, radius, *a, **k):
        radii.append(radius)
        return real(p, g, radius, *a, **k)

    monkeypatch.setattr(guided, "guided_smooth", spy)
    apply_classifier(res.model, img, pixel_size=1.0, unit="Å")
    apply_classifier(res.model, img, pixel_size=2.0, unit="Å")
    assert radii == [pytest.approx(12.0), pytest.approx(6.0)]
