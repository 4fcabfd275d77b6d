"""Chip feature extractors behind one small interface.

``get_extractor(name, **settings)`` returns an :class:`Extractor`; calling
``extractor(image, grid, progress)`` gives one ``float32`` row per chip.

=============  ==============================================================
``fft``        FFT power spectrum of every chip (Hann window): mean log
               power in radial bins, power fraction in angular bins, chip
               mean and standard deviation, grey-level quantiles.
               Weight-free, fast, strong on lattice images.
``filterbank`` Gaussian-derivative responses (smoothed, gradient magnitude,
               Laplacian of Gaussian) at several scales on the whole image;
               per-chip mean and standard deviation of each. Weight-free.
``resnet50``   ResNet-50 in torchvision's layout from a local weights file
               (ImageNet or MicroNet); 2048-d global average pool.
``learned``    A small encoder trained self-supervised by this project on
               synthetic lattice micrographs; shipped in the package.
=============  ==============================================================

Every extractor appends the grey-level quantiles of each chip (``quantiles``,
default 10 / 50 / 90 %; ``quantiles=()`` for none) and reports its columns as
two groups, ``extractor.groups(n_channels)`` = ``{"texture": ...,
"intensity": ...}`` (intensity = mean, standard deviation, quantiles).
:func:`coherence_weights` weighs each group by how spatially coherent it is
on the chip grid and :func:`prepare_weighted` balances the groups (multiple
factor analysis) so neither dominates, reporting the weighting.
``get_extractor(name, scales=(1, 2))`` describes every chip also by its
context twice as large (:class:`MultiScaleExtractor`).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.cluster.chips import make_grid
>>> from napari_interfaces.cluster.features import get_extractor
>>> img = np.random.default_rng(0).random((128, 128, 1), dtype=np.float32)
>>> f = get_extractor("fft")(img, make_grid(img.shape, 32, 16))
>>> f.shape
(49, 29)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.progress import Progress, as_progress
from ..nets.device import resolve_device
from .chips import ChipGrid, extract_chips

__all__ = [
    "EXTRACTORS",
    "Extractor",
    "FFTExtractor",
    "FilterBankExtractor",
    "ResNet50Extractor",
    "LearnedExtractor",
    "get_extractor",
    "RESNET_HOW_TO",
    "DEFAULT_QUANTILES",
    "chip_quantiles",
    "prepare_weighted",
    "coherence_weights",
    "separation_weights",
    "auto_group_weights",
    "MultiScaleExtractor",
    "context_grid",
]

RESNET_HOW_TO = (
    "The resnet50 extractor needs a local weights file in torchvision's ResNet-50 layout "
    "(nothing is downloaded). Get one on a machine with internet access, e.g. ImageNet: "
    '`python -c "import torch, torchvision; torch.save(torchvision.models.resnet50('
    "weights='IMAGENET1K_V2').state_dict(), 'resnet50_imagenet.pt')\"`, or a MicroNet "
    "encoder from nasa/pretrained-microscopy-models (resnet50 'micronet' weights), then "
    "give its path as the weights parameter (the dock's Weights field), or put it in "
    "the weights_dir folder as resnet50.pt."
)


class Extractor:
    """Base class: ``extractor(image (H, W, C), grid, progress) -> (N, D) float32``."""

    name = "base"

    def settings(self) -> dict:
        """JSON-serializable settings that rebuild this extractor (with ``name``)."""
        return {"name": self.name}

    #: Quantiles of the chip's grey values appended per channel (intensity group).
    quantiles: tuple[float, ...] = ()

    def __call__(
        self, image: np.ndarray, grid: ChipGrid, progress: Progress | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def _layout(self) -> tuple[int, tuple[int, ...]]:
        """Columns per channel block and the offsets of intensity columns in it."""
        raise NotImplementedError

    def groups(self, n_channels: int) -> dict[str, np.ndarray]:
        """Column indices of the feature groups for ``n_channels`` channels.

        ``{"texture": idx, "intensity": idx}``: intensity = chip mean, standard
        deviation and quantiles of every channel; texture = everything else.
        Pass them to :func:`prepare_weighted` so neither group dominates.
        """
        per, inten = self._layout()
        cols = np.arange(per * n_channels).reshape(n_channels, per)
        is_int = np.zeros(per, bool)
        is_int[list(inten)] = True
        tex = cols[:, ~is_int].ravel()
        it = cols[:, is_int].ravel()
        nq = len(self.quantiles) * n_channels
        it = np.concatenate([it, per * n_channels + np.arange(nq)]).astype(np.int64)
        return {"texture": tex.astype(np.int64), "intensity": it}

    def _with_quantiles(self, image: np.ndarray, grid: ChipGrid, feats: np.ndarray) -> np.ndarray:
        if not self.quantiles:
            return feats
        q = chip_quantiles(image, grid, self.quantiles)
        return np.concatenate([feats, q], axis=1)


# ------------------------------------------------------------ intensity
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def _quantiles_setting(q) -> tuple[float, ...]:
    if q is None:
        return DEFAULT_QUANTILES
    q = tuple(float(v) for v in q)
    if any(not 0.0 <= v <= 1.0 for v in q):
        raise ValueError(f"quantiles must lie in [0, 1], got {list(q)}")
    return q


def chip_quantiles(
    image: np.ndarray, grid: ChipGrid, quantiles=DEFAULT_QUANTILES, batch: int = 1024
) -> np.ndarray:
    """Grey-value quantiles of every chip and channel, ``(N, C * len(quantiles))`` float32.

    Computed on an every-``chip // 16``-th pixel subsample of each chip (at
    least 256 pixels), which changes them by well under the noise.
    Columns are channel-major: ``c0 q0, c0 q1, ..., c1 q0, ...``.
    """
    img = image if image.ndim == 3 else image[..., None]
    n, c, s = grid.n_chips, img.shape[-1], grid.chip
    q = np.asarray(quantiles, np.float64)
    step = max(1, s // 16)
    out = np.empty((n, c * len(q)), np.float32)
    offs = np.arange(0, s, step)
    org = grid.origins
    for start in range(0, n, batch):
        stop = min(n, start + batch)
        yy = org[start:stop, 0, None] + offs  # (B, m): only the subsampled pixels are copied
        xx = org[start:stop, 1, None] + offs
        chips = img[yy[:, :, None], xx[:, None, :]]  # (B, m, m, C)
        b = stop - start
        v = np.moveaxis(chips, -1, 1).reshape(b, c, -1).astype(np.float32, copy=False)
        out[start:stop] = np.moveaxis(np.quantile(v, q, axis=-1), 0, -1).reshape(b, -1)
    return out


def coherence_weights(
    features: np.ndarray,
    groups: dict[str, np.ndarray],
    grid: ChipGrid,
    floor: float = 0.05,
    power: float = 0.5,
) -> dict[str, float]:
    """Weight of every feature group from its spatial coherence on the chip grid.

    Region features vary slowly across the image; features that only
    measure noise (the texture of an image whose regions differ by grey
    level only, or the grey level of an image whose regions differ by
    texture only) change from chip to chip. For each group the standardized
    columns are correlated with themselves one chip side away (``chip /
    stride`` grid steps, so overlapping chips do not count), along rows and
    columns; the weight is that correlation (variance-weighted over the
    group's columns), at least ``floor``.

    Parameters
    ----------
    features : (N, D) array
        Raw chip features in ``grid``'s row-major chip order.
    groups : dict of str to index arrays
        From ``extractor.groups(n_channels)``.
    grid : ChipGrid
    floor : float
        Smallest correlation used (a group is never dropped entirely).
    power : float
        Exponent applied to the correlation.

    Returns
    -------
    dict of str to float
        ``{group: weight in [floor**power, 1]}``; pass as ``weights`` to
        :func:`prepare_weighted` (or :class:`.graph.FeatureTransform`).
    """
    x = np.asarray(features, dtype=np.float64)
    if x.shape[0] != grid.n_chips:
        raise ValueError(f"{x.shape[0]} feature rows for {grid.n_chips} chips")
    lag = max(1, int(round(grid.chip / grid.stride)))
    out = {}
    for name, idx in groups.items():
        idx = np.asarray(idx, np.int64)
        if idx.size == 0:
            out[name] = round(float(floor) ** power, 4)
            continue
        b = x[:, idx]
        sd = b.std(0)
        keep = sd > 1e-9 * max(1.0, float(np.abs(b).max(initial=0.0)))
        if not keep.any():
            out[name] = round(float(floor) ** power, 4)
            continue
        z = ((b[:, keep] - b[:, keep].mean(0)) / sd[keep]).reshape(grid.rows, grid.cols, -1)
        num = den = 0.0
        for a, c in ((z[:, :-lag], z[:, lag:]), (z[:-lag], z[lag:])):
            if a.size:
                num += float((a * c).sum())
                den += 0.5 * float((a * a).sum() + (c * c).sum())
        rho = num / den if den > 0 else 0.0
        out[name] = round(float(np.clip(rho, floor, 1.0)) ** power, 4)
    return out


def separation_weights(
    features: np.ndarray,
    groups: dict[str, np.ndarray],
    labels: np.ndarray,
    floor: float = 0.02,
    power: float = 0.5,
) -> dict[str, float]:
    """Weight of every feature group = how well it separates a partition of the chips.

    For each group: the fraction of its (standardized) variance that lies
    between the communities of ``labels`` (eta squared, 0..1), at least
    ``floor``, raised to ``power``.
    """
    x = np.asarray(features, dtype=np.float64)
    _, lab = np.unique(np.asarray(labels), return_inverse=True)
    n = np.bincount(lab).astype(np.float64)[:, None]
    out = {}
    for name, idx in groups.items():
        idx = np.asarray(idx, np.int64)
        b = x[:, idx] if idx.size else np.zeros((len(x), 0))
        sd = b.std(0)
        keep = sd > 1e-9 * max(1.0, float(np.abs(b).max(initial=0.0)))
        if not keep.any():
            out[name] = round(float(floor) ** power, 4)
            continue
        z = (b[:, keep] - b[:, keep].mean(0)) / sd[keep]
        m = np.zeros((int(lab.max()) + 1, z.shape[1]))
        np.add.at(m, lab, z)
        m /= n
        eta2 = float((n * m * m).sum() / (z * z).sum())
        out[name] = round(float(np.clip(eta2, floor, 1.0)) ** power, 4)
    return out


def auto_group_weights(
    features: np.ndarray,
    groups: dict[str, np.ndarray],
    n_regions: int | None = None,
    k: int = 10,
    seed: int = 0,
    pca: int | None = 10,
) -> dict[str, float]:
    """Group weights from a first clustering with equal weights (two-pass weighting).

    The chips are clustered once with every group weighted 1
    (:func:`prepare_weighted`, cosine kNN, Louvain, merged to ``n_regions``
    when given); each group is then weighted by the square root of the
    share of its variance that lies between those communities
    (:func:`separation_weights`). A group that only carries noise (the
    texture of regions that differ in grey level only) or a trend that
    does not follow the regions (a smooth illumination gradient) gets a
    small weight; the group that separates the regions keeps a large one.
    Cluster with the returned ``weights`` (second pass).

    Returns
    -------
    dict of str to float
        ``{group: weight}``, to pass as ``weights`` to :func:`prepare_weighted`
        or :meth:`.graph.FeatureTransform.fit`.
    """
    from .communities import detect_communities, merge_to
    from .graph import knn_graph

    z, _ = prepare_weighted(features, groups, None, pca=pca)
    lab = detect_communities(knn_graph(z, k=k, prepared=True), seed=seed)
    if n_regions:
        lab = merge_to(lab, z, int(n_regions))
    return separation_weights(features, groups, lab)


def prepare_weighted(
    features: np.ndarray,
    groups: dict[str, np.ndarray] | None = None,
    weights: dict[str, float] | None = None,
    pca: int | None = 10,
    lift: float = 1.0,
) -> tuple[np.ndarray, dict]:
    """Standardize, balance feature groups, PCA, lift, L2-normalize; report the weighting.

    Multiple-factor-analysis weighting (Escofier & Pages): columns are
    standardized, then every group is divided by the square root of its own
    first eigenvalue, so the main axis of each group (e.g. 24 correlated
    spectrum bins vs. the chip's mean grey level) has the same variance
    whatever its number of columns; ``weights`` then scale that variance
    (default 1 for every group). PCA to ``pca`` components and row
    L2-normalization follow, as in :func:`.graph.prepare_features`, whose
    result this equals when ``groups`` is ``None``. The work is done by
    :class:`.graph.FeatureTransform` (fitted on these chips and applied to
    them); use it directly to apply one image's transform to another's chips.

    ``lift``: before the L2 normalization a constant column of ``lift`` times
    the RMS row norm is appended. Without it, cosine similarity of centred
    features ignores the distance from the centre: chips of a region whose
    grey level is close to the image's mean (the middle of three layers)
    point in random directions and are lost (ARI 0.53 -> 0.87 on three grey
    levels, tests); with it, cosine neighbours approximate Euclidean ones
    while rows stay unit vectors for the kNN graph. ``lift=0`` is the plain
    cosine of issue 7.

    Parameters
    ----------
    features : (N, D) array
        Raw chip features.
    groups : dict of str to index arrays, optional
        Column indices per group (``extractor.groups(n_channels)``).
        Columns in no group are dropped.
    weights : dict of str to float, optional
        Relative weight of each group (missing: 1). 0 drops a group.
    pca : int or None
        Components kept.
    lift : float
        Constant column (in units of the RMS row norm) appended before the
        L2 normalization; 0 for none.

    Returns
    -------
    prepared : (N, min(pca, D')) float32
        Unit rows for the cosine kNN graph.
    report : dict
        ``{"method", "groups": {name: {"columns", "weight", "scale",
        "variance_share"}}}``; ``variance_share`` is the group's share of
        the variance kept by the PCA (what the graph effectively sees).
    """
    from .graph import FeatureTransform

    transform = FeatureTransform.fit(features, pca=pca, groups=groups, weights=weights, lift=lift)
    return transform(features), transform.report


# --------------------------------------------------------------------- fft
def _fft_bins(
    chip: int, n_radial: int, n_angular: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(chip) * chip
    fx = np.fft.rfftfreq(chip) * chip
    yy, xx = np.meshgrid(fy, fx, indexing="ij")
    r = np.hypot(yy, xx).ravel()
    ang = np.mod(np.arctan2(yy, xx), np.pi).ravel()
    edges = np.linspace(1.0, chip / 2.0, n_radial + 1)
    rb = np.digitize(r, edges) - 1
    radial = np.zeros((r.size, n_radial), np.float32)
    ok = (rb >= 0) & (rb < n_radial)
    radial[np.nonzero(ok)[0], rb[ok]] = 1.0
    radial /= np.maximum(radial.sum(0, keepdims=True), 1.0)
    ab = np.minimum((ang / np.pi * n_angular).astype(int), n_angular - 1)
    angular = np.zeros((r.size, n_angular), np.float32)
    okr = (r >= 2.0) & (r <= chip / 2.0)
    angular[np.nonzero(okr)[0], ab[okr]] = 1.0
    return radial, angular, okr.astype(np.float32)


class FFTExtractor(Extractor):
    """FFT power-spectrum descriptors (see module docstring).

    Parameters
    ----------
    n_radial, n_angular : int
        Number of radial (``1 .. chip/2`` cycles per chip) and angular
        (``0 .. 180`` degrees) bins.
    batch : int
        Chips per FFT batch (memory vs. speed).
    workers : int
        Threads for ``scipy.fft``.
    """

    name = "fft"

    def __init__(
        self,
        n_radial: int = 16,
        n_angular: int = 8,
        batch: int = 512,
        workers: int = 2,
        quantiles=None,
    ) -> None:
        self.n_radial = int(n_radial)
        self.n_angular = int(n_angular)
        self.batch = int(batch)
        self.workers = int(workers)
        self.quantiles = _quantiles_setting(quantiles)

    def settings(self) -> dict:
        return {
            "name": self.name,
            "n_radial": self.n_radial,
            "n_angular": self.n_angular,
            "quantiles": list(self.quantiles),
        }

    def _layout(self):
        t = self.n_radial + self.n_angular
        return t + 2, (t, t + 1)

    def __call__(self, image, grid, progress=None):
        import scipy.fft

        progress = as_progress(progress)
        img = image if image.ndim == 3 else image[..., None]
        n, c, s = grid.n_chips, img.shape[-1], grid.chip
        radial, angular, annulus = _fft_bins(s, self.n_radial, self.n_angular)
        nr, na = self.n_radial, self.n_angular
        bins = np.ascontiguousarray(np.concatenate([radial, angular, annulus[:, None]], axis=1))
        hann = np.hanning(s).astype(np.float32)
        win = np.outer(hann, hann)
        per = nr + na + 2
        out = np.empty((n, c * per), np.float32)
        area = np.float32(s * s)
        progress.start(n, "fft features")
        for start in range(0, n, self.batch):
            stop = min(n, start + self.batch)
            b = stop - start
            chips = np.moveaxis(
                extract_chips(img, grid, slice(start, stop)), -1, 1
            )  # (B, C, s, s)
            mean = chips.sum((2, 3), dtype=np.float32) / area
            x = chips - mean[..., None, None]
            std = np.sqrt(np.einsum("bcij,bcij->bc", x, x) / area)
            x *= win
            f = scipy.fft.rfft2(x, workers=self.workers, overwrite_x=True)
            fv = f.view(np.float32)
            np.multiply(fv, fv, out=fv)
            p = (fv[..., 0::2] + fv[..., 1::2]).reshape(b * c, -1)
            q = p @ bins
            feats = np.empty((b * c, per), np.float32)
            np.log10(q[:, :nr] + 1e-8, out=feats[:, :nr])
            np.divide(
                q[:, nr : nr + na],
                np.maximum(q[:, nr + na : nr + na + 1], 1e-12),
                out=feats[:, nr : nr + na],
            )
            feats[:, nr + na] = mean.ravel()
            feats[:, nr + na + 1] = std.ravel()
            out[start:stop] = feats.reshape(b, c * per)
            progress.advance(b)
        return self._with_quantiles(img, grid, out)


# -------------------------------------------------------------- filterbank
def _box_stats(
    resp: np.ndarray, ys: np.ndarray, xs: np.ndarray, s: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-chip mean and std of a 2-D response (chips of side ``s`` at ``ys x xs``)."""
    area = float(s * s)
    w = resp.shape[1]
    out = []
    for v in (resp, resp * resp):
        rows = np.empty((len(ys), w + 1), np.float64)
        rows[:, 0] = 0.0
        for i, y in enumerate(ys):
            rows[i, 1:] = v[y : y + s].sum(0, dtype=np.float32)
        np.cumsum(rows[:, 1:], axis=1, out=rows[:, 1:])
        tot = rows[:, xs + s] - rows[:, xs]
        out.append((tot / area).ravel())
    mean, sq = out
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def _half(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


class FilterBankExtractor(Extractor):
    """Gaussian-derivative filter bank on an image pyramid, per-chip texture statistics.

    At each pyramid level (scale ``2**level`` pixels) the image is smoothed
    with a Gaussian of ``sigma`` level pixels; the responses are the
    band-pass residual (image minus smoothed), the gradient magnitude and
    the absolute Laplacian of the smoothed image. Each chip gets the mean
    and standard deviation of every response, plus its own intensity mean
    and standard deviation.

    Parameters
    ----------
    levels : int
        Pyramid levels (scales 1, 2, 4, ... pixels).
    sigma : float
        Gaussian sigma in level pixels.
    """

    name = "filterbank"

    def __init__(self, levels: int = 3, sigma: float = 1.0, quantiles=None) -> None:
        self.levels = int(levels)
        self.sigma = float(sigma)
        self.quantiles = _quantiles_setting(quantiles)

    def settings(self) -> dict:
        return {
            "name": self.name,
            "levels": self.levels,
            "sigma": self.sigma,
            "quantiles": list(self.quantiles),
        }

    def _layout(self):
        return 2 + 6 * self.levels, (0, 1)

    def __call__(self, image, grid, progress=None):
        from scipy import ndimage as ndi

        progress = as_progress(progress)
        img = image if image.ndim == 3 else image[..., None]
        cols = []
        progress.start(img.shape[-1] * self.levels, "filter bank")
        for c in range(img.shape[-1]):
            x = np.ascontiguousarray(img[..., c], dtype=np.float32)
            cols += list(_box_stats(x, grid.ys, grid.xs, grid.chip))
            for level in range(self.levels):
                f = 2**level
                if level:
                    x = _half(x)
                s = max(2, grid.chip // f)
                ys = np.minimum(grid.ys // f, x.shape[0] - s)
                xs = np.minimum(grid.xs // f, x.shape[1] - s)
                g = ndi.gaussian_filter(x, self.sigma, mode="reflect", truncate=3.0)
                gy, gx = np.gradient(g)
                gm = np.hypot(gy, gx)
                lap = np.abs(ndi.laplace(g))
                for resp in (x - g, gm, lap):
                    cols += list(_box_stats(resp, ys, xs, s))
                progress.advance()
        return self._with_quantiles(img, grid, np.stack(cols, axis=1).astype(np.float32))


# ------------------------------------------------------------------ torch
def _limit_threads() -> None:
    import torch

    if torch.get_num_threads() > 2:
        torch.set_num_threads(2)


class ResNet50Extractor(Extractor):
    """ResNet-50 embeddings from a local torchvision-layout weights file.

    Parameters
    ----------
    weights : str or Path
        State-dict file (``.pt``/``.pth``); looked up on the weights search
        path by name too (see :mod:`napari_interfaces.core.weights`).
    input_size : int or None
        Resize chips to this size before the network (``None``: chip size).
    batch : int
        Chips per forward pass.
    device : str, optional
        ``cpu``, ``cuda`` ...; default from the ``torch_device`` setting.
    """

    name = "resnet50"

    def __init__(
        self,
        weights: str | Path | None = None,
        input_size: int | None = None,
        batch: int = 64,
        device: str | None = None,
        quantiles=None,
    ) -> None:
        from ..core.weights import WeightsError, find_weights

        self.quantiles = _quantiles_setting(quantiles)

        if weights is None or str(weights) == "":
            try:
                path = find_weights("resnet50.pt")
            except WeightsError:
                raise FileNotFoundError(
                    "no ResNet-50 weights file given. " + RESNET_HOW_TO
                ) from None
        else:
            try:
                path = find_weights(str(weights))
            except WeightsError as exc:
                raise FileNotFoundError(f"{exc}. {RESNET_HOW_TO}") from None
        self.weights = Path(path)
        self.input_size = None if input_size in (None, 0) else int(input_size)
        self.batch = int(batch)
        self.device = device
        self._model = None
        self.sha256 = None

    def settings(self) -> dict:
        self._load()
        return {
            "name": self.name,
            "weights": str(self.weights),
            "sha256": self.sha256,
            "input_size": self.input_size,
            "quantiles": list(self.quantiles),
        }

    def _layout(self):
        return 2048, ()

    def _load(self):
        if self._model is not None:
            return self._model
        import torch

        from ..core.weights import WeightsError, load_torch_state, sha256
        from ..nets.encoders import adapt_resnet_state, resnet50

        _limit_threads()
        self.sha256 = sha256(self.weights)
        state = adapt_resnet_state(load_torch_state(self.weights))
        model = resnet50()
        own = model.state_dict()
        missing = [k for k in own if k not in state and not k.startswith("fc.")]
        unexpected = [k for k in state if k not in own]
        shape_bad = [
            k
            for k in state
            if k in own
            and tuple(state[k].shape) != tuple(own[k].shape)
            and not k.startswith("fc.")
        ]
        if missing or unexpected or shape_bad:

            def _few(keys):
                return ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")

            parts = []
            if missing:
                parts.append(f"{len(missing)} missing keys ({_few(missing)})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
            if shape_bad:
                parts.append(f"{len(shape_bad)} shape mismatches ({_few(shape_bad)})")
            raise WeightsError(
                f"{self.weights}: not a torchvision ResNet-50 state dict: " + "; ".join(parts)
            )
        state = {
            k: v
            for k, v in state.items()
            if not k.startswith("fc.") or tuple(v.shape) == tuple(own[k].shape)
        }
        model.load_state_dict(state, strict=False)
        model.eval()
        self._device = resolve_device(self.device)
        self._model = model.to(self._device)
        del torch
        return self._model

    def __call__(self, image, grid, progress=None):
        import torch

        progress = as_progress(progress)
        model = self._load()
        img = image if image.ndim == 3 else image[..., None]
        n = grid.n_chips
        mean = torch.tensor([0.485, 0.456, 0.406], device=self._device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=self._device).view(1, 3, 1, 1)
        out = np.empty((n, 2048), np.float32)
        progress.start(n, "resnet50 features")
        with torch.inference_mode():
            for start in range(0, n, self.batch):
                stop = min(n, start + self.batch)
                chips = extract_chips(img, grid, slice(start, stop))
                x = torch.from_numpy(np.moveaxis(chips, -1, 1).copy()).to(self._device)
                x = x.clamp(0, 1)
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                elif x.shape[1] == 2:
                    x = torch.cat([x, x.mean(1, keepdim=True)], 1)
                elif x.shape[1] > 3:
                    x = x[:, :3]
                if self.input_size and self.input_size != x.shape[-1]:
                    x = torch.nn.functional.interpolate(
                        x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False
                    )
                x = (x - mean) / std
                out[start:stop] = model.embed(x).float().cpu().numpy()
                progress.advance(stop - start)
        return self._with_quantiles(img, grid, out)


LEARNED_FILE = "cluster_learned_encoder.pt"


class LearnedExtractor(Extractor):
    """The project's self-supervised chip encoder (shipped weights).

    Chips are resampled to the encoder's input size (``settings['input']``,
    32 px) after per-chip standardization; each channel is embedded
    separately and the embeddings concatenated. The chip mean and standard
    deviation are appended (the encoder sees standardized chips).
    """

    name = "learned"

    def __init__(
        self,
        weights: str | Path | None = None,
        batch: int = 1024,
        device: str | None = None,
        quantiles=None,
    ) -> None:
        from ..core.weights import find_weights

        self.quantiles = _quantiles_setting(quantiles)

        self.weights = Path(
            find_weights(
                str(weights) if weights else LEARNED_FILE,
                "Train one with scripts/train_learned_encoder.py.",
            )
        )
        self.batch = int(batch)
        self.device = device
        self._model = None
        self.sha256 = None
        self.meta: dict = {}

    def settings(self) -> dict:
        self._load()
        return {
            "name": self.name,
            "weights": self.weights.name,
            "sha256": self.sha256,
            "quantiles": list(self.quantiles),
        }

    def _layout(self):
        self._load()
        d = int(self._model.dim)
        return d + 2, (d, d + 1)

    def _load(self):
        if self._model is not None:
            return self._model
        import json

        from ..core.weights import WeightsError, load_torch_state, sha256
        from ..nets.encoders import ChipEncoder

        _limit_threads()
        self.sha256 = sha256(self.weights)
        state = load_torch_state(self.weights)
        meta_path = self.weights.with_suffix(".json")
        self.meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        model = ChipEncoder(
            dim=int(self.meta.get("dim", 32)), width=int(self.meta.get("width", 16))
        )
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"{self.weights}: not a ChipEncoder state dict: {exc}") from exc
        model.eval()
        self._device = resolve_device(self.device)
        self._model = model.to(self._device)
        return self._model

    def __call__(self, image, grid, progress=None):
        import torch

        progress = as_progress(progress)
        model = self._load()
        size = int(self.meta.get("input", 32))
        img = image if image.ndim == 3 else image[..., None]
        n, c = grid.n_chips, img.shape[-1]
        dim = model.dim
        out = np.empty((n, c * (dim + 2)), np.float32)
        progress.start(n, "learned features")
        with torch.inference_mode():
            for start in range(0, n, self.batch):
                stop = min(n, start + self.batch)
                chips = np.moveaxis(extract_chips(img, grid, slice(start, stop)), -1, 1)
                b = stop - start
                x = torch.from_numpy(chips.reshape(b * c, 1, grid.chip, grid.chip).copy())
                mean = x.mean((2, 3), keepdim=True)
                std = x.std((2, 3), keepdim=True)
                x = (x - mean) / (std + 1e-3)
                if x.shape[-1] != size:
                    x = torch.nn.functional.interpolate(
                        x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear"
                    )
                e = model(x.to(self._device)).float().cpu()
                feats = torch.cat([e, mean.view(-1, 1), std.view(-1, 1)], 1).numpy()
                out[start:stop] = feats.reshape(b, c * (dim + 2))
                progress.advance(b)
        return self._with_quantiles(img, grid, out)


# -------------------------------------------------------------- multi-scale
def context_grid(grid: ChipGrid, factor: int) -> ChipGrid:
    """Chips ``factor`` times larger, centred on ``grid``'s chips (clamped to the image)."""
    h, w = grid.shape
    c = min(int(grid.chip * factor), h, w)
    off = (grid.chip - c) // 2
    ys = np.clip(grid.ys + off, 0, h - c).astype(np.int64)
    xs = np.clip(grid.xs + off, 0, w - c).astype(np.int64)
    return ChipGrid(grid.shape, c, grid.stride, ys, xs, grid.border)


class MultiScaleExtractor(Extractor):
    """One extractor applied to every chip and to its context at larger scales.

    For each factor ``f`` in ``scales`` the chip's centre is described by a
    window of ``f * chip`` pixels (clamped at the image edges); the columns
    are concatenated and every scale forms its own ``texture`` /
    ``intensity`` groups (named ``texture``, ``intensity`` at scale 1 and
    ``texture x2``, ``intensity x2`` ... for the context), so
    :func:`prepare_weighted` balances them. Labels keep the resolution of
    the chip grid; the context tells textures apart whose features need a
    wider window.

    Parameters
    ----------
    base : Extractor
        The single-scale extractor.
    scales : sequence of int
        Window factors, starting with 1 (e.g. ``(1, 2)``).
    """

    def __init__(self, base: Extractor, scales=(1, 2)) -> None:
        scales = tuple(int(f) for f in scales)
        if (
            not scales
            or scales[0] != 1
            or any(f < 1 for f in scales)
            or len(set(scales)) != len(scales)
        ):
            raise ValueError(f"scales must start with 1 and be distinct integers, got {scales}")
        self.base = base
        self.scales = scales
        self.name = base.name
        self.quantiles = base.quantiles

    def settings(self) -> dict:
        return {**self.base.settings(), "scales": list(self.scales)}

    def _layout(self):
        return self.base._layout()

    def groups(self, n_channels: int) -> dict[str, np.ndarray]:
        one = self.base.groups(n_channels)
        width = sum(len(v) for v in one.values())
        out: dict[str, np.ndarray] = {}
        for i, f in enumerate(self.scales):
            for name, idx in one.items():
                out[name if f == 1 else f"{name} x{f}"] = np.asarray(idx) + i * width
        return out

    def __call__(self, image, grid, progress=None):
        progress = as_progress(progress)
        cols = [
            self.base(image, grid if f == 1 else context_grid(grid, f), progress)
            for f in self.scales
        ]
        return np.concatenate(cols, axis=1)


EXTRACTORS = {
    "fft": FFTExtractor,
    "filterbank": FilterBankExtractor,
    "resnet50": ResNet50Extractor,
    "learned": LearnedExtractor,
}


def get_extractor(name: str | dict, **settings) -> Extractor:
    """An extractor by name (or from a settings dict with ``name``).

    Raises
    ------
    ValueError
        Unknown name.
    """
    if isinstance(name, dict):
        settings = {**{k: v for k, v in name.items() if k not in ("name", "sha256")}, **settings}
        name = name["name"]
    key = str(name).lower()
    if key not in EXTRACTORS:
        raise ValueError(f"unknown features {name!r}; choose one of {', '.join(EXTRACTORS)}")
    scales = settings.pop("scales", None)
    ext = EXTRACTORS[key](**settings)
    if scales is not None and tuple(int(f) for f in scales) != (1,):
        return MultiScaleExtractor(ext, scales)
    return ext
