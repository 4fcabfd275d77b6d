"""Learned per-pixel features: the first VGG16 blocks of the shipped HED network.

As napari-convpaint does with an ImageNet VGG16, the image goes through the
first convolution blocks of a pretrained network and the activations of
chosen layers are upsampled bilinearly to every pixel. The network here is
the VGG16 trunk of the HED edge detector that ships with the package
(``weights/hed_apt_finetuned.pt``: ImageNet VGG16 -> BSDS500 edges ->
fine-tuned on synthetic APT slices with its first three blocks frozen, so
the blocks used here are HED's BSDS500 ones; see :mod:`..nets.hed_weights`).
Nothing is downloaded.

* the grey image (0.5/99.5 % percentiles to [0, 1], :func:`.features.normalize_image`)
  is 2 x 2 mean-pooled to half its size by default (``downsample``: the
  network then sees twice the context at a quarter of the cost), repeated
  to three channels and preprocessed as HED expects (x 255, minus the Caffe
  BGR mean, :func:`..nets.hed.preprocess`);
* the outputs of the last ReLU of blocks 1..3 (``conv1_2``: 64 channels at
  the network's input resolution, ``conv2_2``: 128 at 1/2, ``conv3_3``: 256
  at 1/4) are
  reduced to a few principal components per layer (fitted on the training
  image, then kept with the classifier, so another image is projected on the
  same axes) and upsampled bilinearly to every pixel;
* big images are processed in overlapping tiles (the blocks see 40 px
  around a pixel), torch with at most two threads (one for a network input
  of at most :data:`ONE_THREAD_PIXELS`: on a busy two-core machine the
  second thread cost 0.2 s there, bits unchanged); the principal axes and
  the projection run with NumPy's BLAS on one thread (on a busy two-core
  machine a multi-threaded BLAS took 3 s instead of 0.2 s for the three
  256-channel-or-less covariances and eigendecompositions), and the
  upsampling writes the stack in row blocks, one interpolation phase at a
  time (no gathers; bit-identical to :func:`._resample._upsample`, 2-3x
  faster).

This module imports torch lazily (inside the functions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.errors import InputError
from ..core.threads import one_blas_thread

__all__ = [
    "LAYERS",
    "LearnedProjection",
    "learned_feature_names",
    "learned_maps",
    "upsample_into",
    "weights_id",
]

#: VGG16 layers (the output of a block's last ReLU): name -> (block index, channels, stride).
LAYERS = {"conv1_2": (0, 64, 1), "conv2_2": (1, 128, 2), "conv3_3": (2, 256, 4)}

#: Which weights the learned features come from (:func:`..nets.hed_weights.load_hed`).
WEIGHTS = "finetuned"

#: Tile side and overlap (pixels of the network's input; multiples of the largest stride).
TILE = 512
OVERLAP = 48


def weights_id() -> str:
    """``"<name>:<sha256>"`` of the weights the learned features use (saved with a classifier)."""
    from ..nets.hed_weights import FINETUNED_FILE, FINETUNED_SHA256

    return f"{FINETUNED_FILE}:{FINETUNED_SHA256}"


@dataclass(frozen=True)
class LearnedProjection:
    """Principal axes of each layer's activations (fitted on the training image).

    Attributes
    ----------
    layers : tuple of str
        Layer names (:data:`LAYERS`).
    mean : tuple of ndarray
        Per layer, ``(C,)`` channel means.
    components : tuple of ndarray
        Per layer, ``(C, k)`` projection (unit principal axes scaled by
        ``1 / sqrt(eigenvalue)``, so every component has unit variance on the
        training image).
    """

    layers: tuple[str, ...]
    mean: tuple[np.ndarray, ...]
    components: tuple[np.ndarray, ...]

    @property
    def n_features(self) -> int:
        return int(sum(c.shape[1] for c in self.components))

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for name, m, c in zip(self.layers, self.mean, self.components):
            out[f"learned_mean_{name}"] = np.asarray(m, np.float32)
            out[f"learned_components_{name}"] = np.asarray(c, np.float32)
        return out

    @classmethod
    def from_arrays(cls, layers, arrays) -> LearnedProjection:
        try:
            mean = tuple(np.asarray(arrays[f"learned_mean_{n}"], np.float32) for n in layers)
            comp = tuple(np.asarray(arrays[f"learned_components_{n}"], np.float32) for n in layers)
        except KeyError as exc:
            raise InputError(f"learned features: projection {exc} missing") from None
        for n, m, c in zip(layers, mean, comp):
            ch = LAYERS[n][1]
            if m.shape != (ch,) or c.ndim != 2 or c.shape[0] != ch:
                raise InputError(f"learned features: projection of {n} has a wrong shape")
        return cls(tuple(layers), mean, comp)

    def key(self) -> tuple:
        return tuple(hash(c.tobytes()) for c in self.components)


def learned_feature_names(layers, n_components) -> list[str]:
    """``["conv1_2/pc1", ...]``: names of the learned feature columns."""
    return [f"{n}/pc{i + 1}" for n in layers for i in range(int(n_components))]


def _check_layers(layers) -> tuple[str, ...]:
    layers = tuple(layers)
    bad = [n for n in layers if n not in LAYERS]
    if bad or not layers:
        raise InputError(f"learned layers: expected some of {list(LAYERS)}, got {list(layers)}")
    return layers


#: Network inputs of at most this many pixels run torch on one thread (1024 x 1024 at 1/4
#: resolution is 65,536): on the shared two-core machine (load 2.4-2.8) the three blocks of a
#: 256 x 256 input took 0.11 s on one thread and 0.31 s on two (medians of 15, alternating;
#: 0.06 s on two idle cores); the activations are the same bits on one or two threads.
ONE_THREAD_PIXELS = 1 << 17


def _torch_threads(n: int = 2):
    """Context: torch with at most ``n`` (and two) threads (restored afterwards)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def ctx():
        prev = torch.get_num_threads()
        torch.set_num_threads(max(1, min(2, int(n), prev)))
        try:
            yield torch
        finally:
            torch.set_num_threads(prev)

    return ctx()


def vgg_activations(img: np.ndarray, layers) -> list[np.ndarray]:
    """Activations of ``layers`` of the HED VGG trunk, ``(ceil(H/s), ceil(W/s), C)`` each.

    ``img`` is a normalized grey image (about [0, 1]). Computed in tiles of
    :data:`TILE` px with :data:`OVERLAP` px of context on each side.
    """
    from ..nets.hed import preprocess
    from ..nets.hed_weights import load_hed

    layers = _check_layers(layers)
    n_blocks = max(LAYERS[n][0] for n in layers) + 1
    step = 2 ** (n_blocks - 1)  # tile origins on the coarsest grid
    h, w = img.shape
    outs = {
        n: np.empty(
            (math.ceil(h / LAYERS[n][2]), math.ceil(w / LAYERS[n][2]), LAYERS[n][1]), np.float32
        )
        for n in layers
    }
    by_block = {LAYERS[n][0]: n for n in layers}
    ov = int(math.ceil(OVERLAP / step) * step)
    with _torch_threads(1 if h * w <= ONE_THREAD_PIXELS else 2) as torch:
        model = load_hed(WEIGHTS, device="cpu")
        blocks = model.blocks[:n_blocks]
        with torch.inference_mode():
            for y0 in range(0, h, TILE):
                for x0 in range(0, w, TILE):
                    y1, x1 = min(h, y0 + TILE), min(w, x0 + TILE)
                    py0, px0 = max(0, y0 - ov), max(0, x0 - ov)
                    py1, px1 = min(h, y1 + ov), min(w, x1 + ov)
                    x = torch.from_numpy(preprocess(img[py0:py1, px0:px1])[None])
                    x = x.contiguous(memory_format=torch.channels_last)
                    for b, block in enumerate(blocks):
                        x = block(x)
                        if b in by_block:
                            n = by_block[b]
                            s = LAYERS[n][2]
                            a = x[0].permute(1, 2, 0).numpy()
                            oy, ox = (y0 - py0) // s, (x0 - px0) // s
                            ty, tx = math.ceil(y1 / s) - y0 // s, math.ceil(x1 / s) - x0 // s
                            outs[n][y0 // s : y0 // s + ty, x0 // s : x0 // s + tx] = a[
                                oy : oy + ty, ox : ox + tx
                            ]
    return [outs[n] for n in layers]


def fit_projection(
    acts: list[np.ndarray], layers, n_components: int, seed: int = 0, n_samples: int = 20000
) -> LearnedProjection:
    """Principal axes of each layer's activations (a seeded subsample of positions)."""
    with one_blas_thread():
        return _fit_projection(acts, layers, n_components, seed, n_samples)


def _fit_projection(acts, layers, n_components, seed, n_samples) -> LearnedProjection:
    rng = np.random.default_rng(seed)
    means, comps = [], []
    for a in acts:
        flat = a.reshape(-1, a.shape[-1])
        idx = rng.choice(len(flat), min(n_samples, len(flat)), replace=False)
        x = flat[idx].astype(np.float64)
        m = x.mean(0)
        cov = np.cov(x - m, rowvar=False)
        val, vec = np.linalg.eigh(cov)
        order = np.argsort(val)[::-1][: int(n_components)]
        val, vec = val[order], vec[:, order]
        # unit variance per component; a sign convention makes it deterministic
        sign = np.sign(vec[np.abs(vec).argmax(0), np.arange(vec.shape[1])])
        vec = vec * sign / np.sqrt(np.maximum(val, 1e-12))
        means.append(m.astype(np.float32))
        comps.append(vec.astype(np.float32))
    return LearnedProjection(tuple(layers), tuple(means), tuple(comps))


def learned_maps(
    img: np.ndarray,
    layers,
    n_components: int,
    projection: LearnedProjection | None = None,
    out: np.ndarray | None = None,
    downsample: int = 1,
) -> tuple[np.ndarray, LearnedProjection]:
    """Learned features ``(H, W, len(layers) * n_components)`` float32 and their projection.

    Parameters
    ----------
    img : ndarray
        Normalized grey image (:func:`.features.normalize_image`).
    layers : sequence of str
        Names from :data:`LAYERS`.
    n_components : int
        Principal components kept per layer.
    projection : LearnedProjection, optional
        Axes from the training image (default: fitted on ``img``).
    out : ndarray, optional
        ``(H, W, F)`` view that receives the maps (e.g. part of the feature stack).
    downsample : int
        1, 2, 4 ...: the network sees the image 2 x 2 mean-pooled this many
        times fewer pixels per side (larger context, a quarter of the cost
        per halving).
    """
    from ._resample import _pool2

    layers = _check_layers(layers)
    h, w = img.shape
    x = img
    d = int(downsample)
    if d < 1 or d & (d - 1):
        raise InputError(f"learned features: downsample must be a power of two, got {d}")
    for _ in range(d.bit_length() - 1):
        x = _pool2(x)
    acts = vgg_activations(x, layers)
    if projection is None:
        projection = fit_projection(acts, layers, n_components)
    elif tuple(projection.layers) != layers or any(
        c.shape[1] != int(n_components) for c in projection.components
    ):
        raise InputError("learned features: the classifier's projection does not match its layers")
    k = int(n_components)
    if out is None:
        out = np.empty((h, w, k * len(layers)), np.float32)
    for i, (n, a, m, c) in enumerate(zip(layers, acts, projection.mean, projection.components)):
        flat = a.reshape(-1, a.shape[-1])
        with one_blas_thread():
            p = (flat @ c - m @ c).reshape(a.shape[0], a.shape[1], k).astype(np.float32)
        f = LAYERS[n][2] * d
        dst = out[..., i * k : (i + 1) * k]
        if f == 1:
            dst[...] = p
        else:
            upsample_into(p, (h, w), f, dst)
    return out, projection


#: Output rows per block of :func:`upsample_into` (the block's temporaries stay in the cache).
_UP_ROWS = 32


def _phase_plan(n_in: int, n_out: int, factor: int) -> list:
    """Linear upsampling along one axis, grouped by phase ``r = o % factor``.

    For a power-of-two ``factor`` every output ``o = r + factor * q`` inside
    the image reads inputs ``q + c_r`` and ``q + c_r + 1`` with the same
    weight ``t_r`` (exact in float32), so a phase is two slices; the few
    outputs at the borders (clamped) are listed one by one. Returns
    ``[(r, qa, qb, c_r, t_r, [(o, i0, i1, t), ...]), ...]``.
    """
    from ._resample import _lerp_weights

    i0, i1, t = _lerp_weights(n_in, n_out, factor)
    plan = []
    for r in range(min(factor, n_out)):
        o = np.arange(r, n_out, factor)
        a, b, tr = i0[o], i1[o], t[o]
        mid = len(o) // 2
        c = int(a[mid]) - mid
        reg = (a == np.arange(len(o)) + c) & (b == a + 1) & (tr == tr[mid])
        qs = np.flatnonzero(reg)
        qa, qb = (int(qs[0]), int(qs[-1]) + 1) if len(qs) else (0, 0)
        if not reg[qa:qb].all():  # not one run (never for a power of two): all one by one
            qa = qb = 0
        reg[:] = False
        reg[qa:qb] = True
        irr = [(int(o[j]), int(a[j]), int(b[j]), t[o[j]]) for j in np.flatnonzero(~reg)]
        plan.append((r, qa, qb, c, tr[mid], irr))
    return plan


def upsample_into(p: np.ndarray, shape: tuple[int, int], factor: int, out: np.ndarray) -> None:
    """Bilinear upsampling of ``p (h, w, k)`` by ``factor`` into ``out (H, W, k)``.

    Pixel centres aligned, borders clamped: bit-identical to
    :func:`._resample._upsample` (rows first, then columns, the same float32
    operations), written in blocks of :data:`_UP_ROWS` output rows and one
    interpolation phase of the columns at a time (slices instead of
    gathers), so the temporaries stay in the cache.
    """
    from ._resample import _lerp_weights

    hh, ww = shape
    i0, i1, t = _lerp_weights(p.shape[0], hh, factor)
    plan = _phase_plan(p.shape[1], ww, factor)
    one = np.float32(1)
    for r0 in range(0, hh, _UP_ROWS):
        r1 = min(hh, r0 + _UP_ROWS)
        y = p[i0[r0:r1]]
        y *= (one - t[r0:r1])[:, None, None]
        b = p[i1[r0:r1]]
        b *= t[r0:r1][:, None, None]
        y += b  # (rows, w, k): the rows interpolated
        o = out[r0:r1]
        for r, qa, qb, c, tr, irr in plan:
            if qb > qa:
                dst = o[:, r + factor * qa : r + factor * (qb - 1) + 1 : factor]
                np.multiply(y[:, qa + c : qb + c], one - tr, out=dst)
                dst += y[:, qa + c + 1 : qb + c + 1] * tr
            for oo, a, bb, tt in irr:
                o[:, oo] = y[:, a] * (one - tt) + y[:, bb] * tt
