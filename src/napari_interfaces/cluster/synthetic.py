"""Synthetic micrographs with known regions, for tests, benchmarks and demos.

:func:`order_disorder_micrograph` makes an HRTEM-like image whose Voronoi
regions are *crystalline* (a clean 2-D lattice of fringes), *damaged* (the
same lattice with a strong, smooth random phase/displacement field, lower
contrast and point defects) or *amorphous* (band-pass noise: a diffuse ring
in the power spectrum at the lattice frequency, no spots), plus noise.
:func:`texture_mosaic` makes a mosaic of distinct textures (oriented
fringes, blobs, fine noise) for the napari sample data.

:func:`natural_texture_mosaic` tiles scikit-image's photographs of brick,
grass and gravel into Voronoi regions; :func:`interface_micrograph` is a
HAADF-like interface of two crystals (different period, orientation and mean
intensity) along a rough boundary; :func:`coating_cross_section` is an
SEM-like cross-section whose layers share one grain texture and differ only
in mean grey level; :func:`lattice_image` is a plain lattice of known period
(for chip-size estimation tests).

All return ``(image float32 in [0, 1], labels int32 1..K)`` except
:func:`lattice_image` (image only).

Examples
--------
>>> from napari_interfaces.cluster.synthetic import order_disorder_micrograph
>>> img, lab = order_disorder_micrograph((128, 128), seed=0)
>>> img.shape, sorted(set(lab.ravel().tolist()))
((128, 128), [1, 2, 3])
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "voronoi_regions",
    "order_disorder_micrograph",
    "texture_mosaic",
    "natural_texture_mosaic",
    "interface_micrograph",
    "coating_cross_section",
    "lattice_image",
    "CLASS_NAMES",
]

CLASS_NAMES = {1: "crystalline", 2: "damaged", 3: "amorphous"}


def voronoi_regions(
    shape: tuple[int, int], n_regions: int, n_classes: int, seed: int = 0
) -> np.ndarray:
    """Voronoi cells of random seeds, each given a class ``1..n_classes`` (all used)."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    h, w = shape
    pts = rng.random((n_regions, 2)) * [h, w]
    cls = np.concatenate(
        [
            np.arange(1, n_classes + 1),
            rng.integers(1, n_classes + 1, max(0, n_regions - n_classes)),
        ]
    )
    cls = cls[:n_regions]
    rng.shuffle(cls)
    # label a coarse grid then upsample: fast for big images
    f = max(1, min(h, w) // 512)
    yy, xx = np.mgrid[0:h:f, 0:w:f]
    _, idx = cKDTree(pts).query(np.stack([yy.ravel(), xx.ravel()], 1), workers=2)
    lab = cls[idx].reshape(yy.shape).astype(np.int32)
    if f > 1:
        lab = np.repeat(np.repeat(lab, f, 0), f, 1)[:h, :w]
    return lab


def _smooth_noise(shape, sigma, rng) -> np.ndarray:
    from scipy import ndimage as ndi

    f = max(1, int(sigma // 4))
    small = rng.normal(size=(shape[0] // f + 2, shape[1] // f + 2)).astype(np.float32)
    small = ndi.gaussian_filter(small, sigma / f)
    small /= small.std() + 1e-12
    if f > 1:
        small = ndi.zoom(small, f, order=1)
    return small[: shape[0], : shape[1]]


def _lattice(yy, xx, period, theta, phase=None):
    k = 2 * np.pi / period
    out = np.zeros(yy.shape, np.float32)
    for a in (0.0, np.pi / 3, 2 * np.pi / 3):  # hexagonal lattice: three fringe sets
        t = theta + a
        arg = k * (np.cos(t) * xx + np.sin(t) * yy)
        if phase is not None:
            arg = arg + phase[int(a > 0) + int(a > 1)]
        out += np.cos(arg).astype(np.float32)
    return out / 3.0


def _bandpass_noise(shape, period, rng) -> np.ndarray:
    h, w = shape
    noise = rng.normal(size=shape).astype(np.float32)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    r = np.sqrt(fy**2 + fx**2)
    f0 = 1.0 / period
    ring = np.exp(-0.5 * ((r - f0) / (0.18 * f0)) ** 2).astype(np.float32)
    out = np.fft.irfft2(np.fft.rfft2(noise) * ring, s=shape).astype(np.float32)
    return out / (out.std() + 1e-12) * 0.45


def order_disorder_micrograph(
    shape: tuple[int, int] = (512, 512),
    n_regions: int = 9,
    period: float = 6.0,
    noise: float = 0.25,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Crystalline / damaged / amorphous regions (labels 1 / 2 / 3).

    Parameters
    ----------
    shape : (int, int)
        Image size in pixels.
    n_regions : int
        Voronoi cells (each gets one of the three classes; all three occur).
    period : float
        Lattice fringe period in pixels.
    noise : float
        Standard deviation of the additive Gaussian noise (signal ~ unit).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    labels = voronoi_regions(shape, n_regions, 3, seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    theta = rng.uniform(0, np.pi / 3)
    crystal = _lattice(yy, xx, period, theta)
    phases = [3.0 * _smooth_noise(shape, 4.0, rng) for _ in range(3)]
    damaged = 0.7 * _lattice(yy, xx, period, theta, phases)
    defects = rng.random(shape) < 0.01
    from scipy import ndimage as ndi

    damaged -= 0.6 * ndi.gaussian_filter(defects.astype(np.float32), 1.5) * 6
    amorphous = _bandpass_noise(shape, period, rng)
    img = np.where(labels == 1, crystal, np.where(labels == 2, damaged, amorphous))
    img = img + noise * rng.normal(size=shape).astype(np.float32)
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32), labels


def texture_mosaic(
    shape: tuple[int, int] = (512, 512),
    n_regions: int = 12,
    n_classes: int = 4,
    noise: float = 0.2,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi mosaic of up to 5 textures: horizontal fringes, diagonal fringes, blobs, fine noise, flat+noise."""
    from scipy import ndimage as ndi

    if not 2 <= n_classes <= 5:
        raise ValueError(f"n_classes must be 2..5, got {n_classes}")
    rng = np.random.default_rng(seed)
    h, w = shape
    labels = voronoi_regions(shape, n_regions, n_classes, seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tex = [
        np.cos(2 * np.pi * yy / 8.0),
        np.cos(2 * np.pi * (xx + yy) / (5.0 * np.sqrt(2))),
        np.tanh(3 * ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), 3.0) * 3),
        ndi.gaussian_filter(rng.normal(size=shape).astype(np.float32), 0.7) * 2.0,
        np.full(shape, 0.8, np.float32),
    ]
    img = np.zeros(shape, np.float32)
    for c in range(n_classes):
        img[labels == c + 1] = tex[c][labels == c + 1]
    img += noise * rng.normal(size=shape).astype(np.float32)
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32), labels


def natural_texture_mosaic(
    shape: tuple[int, int] = (768, 768), n_regions: int = 9, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi mosaic of three natural textures (scikit-image's brick, grass, gravel).

    Each 512 x 512 photograph is mirror-tiled to ``shape`` and standardized
    (mean 0.5, the same standard deviation), so regions differ by texture
    only. Labels 1 / 2 / 3 = brick / grass / gravel.
    """
    from skimage import data

    h, w = shape
    labels = voronoi_regions(shape, n_regions, 3, seed)
    img = np.zeros(shape, np.float32)
    for c, name in enumerate(("brick", "grass", "gravel")):
        t = getattr(data, name)().astype(np.float32)
        reps = (-(-h // t.shape[0]), -(-w // t.shape[1]))
        tiles = np.block(
            [[t[:: (-1) ** i, :: (-1) ** j] for j in range(reps[1])] for i in range(reps[0])]
        )[:h, :w]
        tiles = (tiles - tiles.mean()) / (tiles.std() + 1e-9)
        m = labels == c + 1
        img[m] = tiles[m]
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32), labels


def lattice_image(
    shape: tuple[int, int] = (256, 256),
    period: float = 8.0,
    theta: float = 0.3,
    noise: float = 0.2,
    seed: int = 0,
) -> np.ndarray:
    """A hexagonal lattice of fringe ``period`` pixels plus Gaussian noise, in ``[0, 1]``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    img = _lattice(yy, xx, period, theta) + noise * rng.normal(size=shape).astype(np.float32)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def interface_micrograph(
    shape: tuple[int, int] = (512, 768),
    periods: tuple[float, float] = (7.0, 5.0),
    levels: tuple[float, float] = (0.35, 0.65),
    roughness: float = 12.0,
    noise: float = 0.35,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """HAADF-like interface: two crystals meeting along a rough, roughly horizontal boundary.

    Region 1 (top, e.g. an oxide) and region 2 (bottom, e.g. the
    semiconductor) have their own lattice ``periods`` (px), orientations and
    mean ``levels``; the boundary wanders by about ``roughness`` px; a
    slowly varying background and Gaussian noise are added.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    x = np.arange(w, dtype=np.float32)
    wander = np.zeros(w, np.float32)
    for k in range(1, 6):
        wander += rng.normal() / k * np.sin(2 * np.pi * k * x / w + rng.uniform(0, 2 * np.pi))
    y0 = h * rng.uniform(0.4, 0.6) + roughness * wander / (np.abs(wander).max() + 1e-9)
    labels = np.where(yy < y0[None, :], 1, 2).astype(np.int32)
    img = np.zeros(shape, np.float32)
    for c in (0, 1):
        lat = _lattice(yy, xx, periods[c], rng.uniform(0, np.pi / 3))
        part = levels[c] + 0.25 * lat
        img[labels == c + 1] = part[labels == c + 1]
    img += 0.08 * _smooth_noise(shape, 64.0, rng)
    img += noise * 0.25 * rng.normal(size=shape).astype(np.float32)
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32), labels


def coating_cross_section(
    shape: tuple[int, int] = (512, 512),
    levels: tuple[float, ...] = (0.45, 0.6, 0.45),
    grain: float = 3.0,
    noise: float = 0.12,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """SEM-like cross-section whose layers differ only in mean grey level.

    Horizontal layers (substrate, oxide band, coating: labels 1, 2, 3 from
    top to bottom; ``len(levels)`` layers) with wavy boundaries share one
    grain texture (smoothed noise of correlation ``grain`` px) and noise;
    only their mean grey ``levels`` differ. Layers with equal levels get
    different labels, so pass distinct levels for a fair test: with the
    default the first and last layers look alike and only the band differs.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    n = len(levels)
    x = np.arange(w, dtype=np.float32)
    yy = np.mgrid[0:h, 0:w][0].astype(np.float32)
    labels = np.ones(shape, np.int32)
    for i in range(1, n):
        base = h * i / n
        wav = 0.04 * h * np.sin(2 * np.pi * x / w * rng.uniform(1, 3) + rng.uniform(0, 6.3))
        labels[yy >= (base + wav)[None, :]] = i + 1
    texture = 0.12 * _smooth_noise(shape, grain, rng)
    img = np.asarray(levels, np.float32)[labels - 1] + texture
    img += noise * rng.normal(size=shape).astype(np.float32)
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32), labels
