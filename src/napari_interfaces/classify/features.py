"""Multi-scale per-pixel features for the stroke-trained pixel classifier.

Every pixel gets, at each scale ``s`` (Gaussian sigma in pixels):

* the smoothed intensity ``G_s * I``;
* the scale-normalized gradient magnitude ``s |grad(G_s * I)|``;
* the two scale-normalized Hessian eigenvalues (ridges, blobs, valleys);
* the two eigenvalues of the structure tensor (edge energy and coherence of
  the local orientation, integrated over the same scale);
* the local standard deviation ``sqrt(G_s * I^2 - (G_s * I)^2)`` (texture).

plus the raw (normalized) intensity and, with ``extras`` (the default), nine
fine-scale full-resolution maps for thin structures and slow background
gradients (``u`` = the smallest sigma, 1 px by default):

* differences of Gaussians ``G_u - G_2u``, ``G_2u - G_4u``, ``G_u - G_8u``
  (thin bright/dark lines, small particles);
* the intensity relative to its surroundings ``I - G_16u`` (flattens
  illumination gradients);

  (``G_8u`` and ``G_16u`` are the smooth maps of those scales, from the
  pyramid below, when the sigmas have them: the defaults do);
* ``G_u/2 * I`` (finer than the smallest scale);
* the minimum and maximum of ``G_u * I`` over ``5u`` and ``11u`` windows (a
  thin dark crack next to a pixel, or a bright grain).

``1 + 7 * len(sigmas) + 9`` features in all.

Scales above 2 px are computed on an image pyramid (2 x 2 mean pooling, then
sigma 2 at that level) and upsampled bilinearly, so the cost of the 32 px
scale is that of a 64 x smaller image. The scales run as jobs in up to two
threads (:func:`feature_threads`; scipy.ndimage and numpy release the GIL) and
their maps are written into the stack a block of rows at a time: the
features of a 1024 x 1024 image take about 0.3 s on one core (scipy and
numpy only; docs/benchmarks.md, ninth round (a)).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.classify.features import FeatureSettings, pixel_features
>>> f = pixel_features(np.random.default_rng(0).random((64, 64)), FeatureSettings())
>>> f.shape
(64, 64, 59)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..core.errors import InputError
from ._resample import _lerp_weights, _pool2

__all__ = [
    "FEATURE_PRESETS",
    "FEATURE_SETS",
    "FeatureSettings",
    "compute_features",
    "FeatureCache",
    "feature_names",
    "normalize_image",
    "pixel_features",
    "superpixels",
]

PER_SCALE = ("smooth", "gradient", "hessian_1", "hessian_2", "tensor_1", "tensor_2", "std")
EXTRAS = ("dog_1_2", "dog_2_4", "dog_1_8", "relative_16", "smooth_half")
EXTRAS += ("min_5", "max_5", "min_11", "max_11")

#: Named feature sets (the ``features`` parameter): hand-made, learned (VGG16), both, or
#: both in the faster mix of :data:`FEATURE_PRESETS`.
FEATURE_SETS = ("basic", "vgg", "basic+vgg", "basic+vgg-fast")
#: The VGG16 layers of the ``vgg`` feature sets (:mod:`.learned`).
VGG_LAYERS = ("conv1_2", "conv2_2", "conv3_3")
#: Principal components per learned layer.
LEARNED_COMPONENTS = 16
#: The network sees the image at 1/2 resolution (larger context, 1/4 of the cost).
LEARNED_DOWNSAMPLE = 2
#: Named feature sets that also fix other settings than which features are on
#: (:meth:`FeatureSettings.of_feature_set`, :meth:`FeatureSettings.with_feature_set`; see
#: docs/benchmarks.md, ninth round (b)).
#: ``basic+vgg-fast``: the basic features without the nine fine-scale extras, and the three
#: VGG16 layers on the image at 1/4 resolution, 12 principal components each (86 features
#: instead of 107). With ``kind="forest+mlp"`` on the six benchmark micrographs (mean of
#: seeds 0-2, rounds 1 / 2): 0.608 / 0.702, against 0.611 / 0.704 with all basic features
#: and 16 components at 1/4 resolution and 0.572 / 0.674 with the basic features alone; per
#: 1024 x 1024 image 2.3-2.4 x scikit-image's time, 0.35-0.4 s more than the mixture on the
#: basic features (1.6-1.7 x) and as much less than with all basic features and 16 components.
FEATURE_PRESETS: dict[str, dict[str, Any]] = {
    "basic+vgg-fast": {
        "basic": True,
        "extras": False,
        "learned": VGG_LAYERS,
        "learned_components": 12,
        "learned_downsample": 4,
    },
}


@dataclass(frozen=True)
class FeatureSettings:
    """What the pixel features are and at which physical scale.

    Attributes
    ----------
    sigmas : tuple of float
        Gaussian scales in pixels *of the training image*.
    pixel_size : float or None
        Pixel size of the training image (``unit``), or None when unknown;
        other images with a known pixel size get their sigmas rescaled so the
        features describe the same physical lengths.
    unit : str
        ``"Å"``, ``"nm"`` or ``"pixel"``.
    extras : bool
        Add the nine fine-scale maps (:data:`EXTRAS`); classifiers saved
        before they existed load with ``extras=False``.
    basic : bool
        The hand-made multi-scale features above (False: learned ones only).
    learned : tuple of str
        VGG16 layers of the learned features (:mod:`.learned`), ``()`` = none.
    learned_components : int
        Principal components kept per learned layer.
    learned_downsample : int
        The network sees the image 2 x 2 mean-pooled to 1/this per side
        (1, 2, 4; :data:`LEARNED_DOWNSAMPLE`).
    projection : LearnedProjection or None
        The learned layers' principal axes, fitted on the training image
        (None until features were computed for training).
    """

    sigmas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
    pixel_size: float | None = None
    unit: str = "pixel"
    extras: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    basic: bool = True
    learned: tuple[str, ...] = ()
    learned_components: int = LEARNED_COMPONENTS
    learned_downsample: int = LEARNED_DOWNSAMPLE
    projection: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        sig = tuple(float(s) for s in self.sigmas)
        if not sig or any(not math.isfinite(s) or s <= 0 for s in sig):
            raise InputError(f"sigmas: expected positive numbers, got {self.sigmas!r}")
        if self.pixel_size is not None and not (
            math.isfinite(self.pixel_size) and self.pixel_size > 0
        ):
            raise InputError(f"pixel_size: expected a positive number, got {self.pixel_size!r}")
        object.__setattr__(self, "sigmas", sig)
        object.__setattr__(self, "learned", tuple(str(n) for n in self.learned))
        if not self.basic and not self.learned:
            raise InputError("features: neither the basic nor learned features are on")
        if self.learned:
            from .learned import LAYERS

            bad = [n for n in self.learned if n not in LAYERS]
            if bad:
                raise InputError(f"learned layers: expected some of {list(LAYERS)}, got {bad}")
            if not 1 <= int(self.learned_components) <= 64:
                raise InputError("learned_components: expected 1 to 64")
            if int(self.learned_downsample) not in (1, 2, 4, 8):
                raise InputError("learned_downsample: expected 1, 2, 4 or 8")

    @staticmethod
    def _feature_set_fields(name: str) -> dict[str, Any]:
        if name in FEATURE_PRESETS:
            return dict(FEATURE_PRESETS[name])
        if name not in FEATURE_SETS:
            known = (*FEATURE_SETS, *FEATURE_PRESETS)
            raise InputError(f"features: expected one of {known}, got {name!r}")
        return {"basic": "basic" in name, "learned": VGG_LAYERS if "vgg" in name else ()}

    @classmethod
    def of_feature_set(cls, name: str, **kw: Any) -> FeatureSettings:
        """Settings of a named feature set (:data:`FEATURE_SETS` or :data:`FEATURE_PRESETS`;
        ``kw``: other fields)."""
        return cls(**{**cls._feature_set_fields(name), **kw})

    def with_feature_set(self, name: str) -> FeatureSettings:
        """These settings with the named feature set's features (:data:`FEATURE_SETS`,
        :data:`FEATURE_PRESETS`).

        ``basic``, ``vgg`` and ``basic+vgg`` set which features are on and keep
        the other fields (scales, extras, learned components and resolution);
        a preset (:data:`FEATURE_PRESETS`) also sets its own extras and learned
        settings. The scales, pixel size and unit are always kept; the learned
        projection is dropped (it belongs to other features).
        """
        from dataclasses import MISSING, replace

        kw = self._feature_set_fields(name)
        current = self.feature_set
        if name not in FEATURE_PRESETS and current in FEATURE_PRESETS:
            # leaving a preset: its other fields go back to their defaults
            defaults = {f.name: f.default for f in fields(self) if f.default is not MISSING}
            kw = {**{k: defaults[k] for k in FEATURE_PRESETS[current]}, **kw}
        return replace(self, projection=None, **kw)

    @property
    def feature_set(self) -> str:
        """The name of these features (:data:`FEATURE_SETS`, :data:`FEATURE_PRESETS`).

        A preset's name (``"basic+vgg-fast"``) when the settings are the
        preset's, else ``"basic"``, ``"vgg"`` or ``"basic+vgg"``.
        """
        for name, preset in FEATURE_PRESETS.items():
            if all(getattr(self, k) == v for k, v in preset.items()):
                return name
        names = (["basic"] if self.basic else []) + (["vgg"] if self.learned else [])
        return "+".join(names)

    @property
    def n_basic(self) -> int:
        if not self.basic:
            return 0
        return 1 + len(PER_SCALE) * len(self.sigmas) + (len(EXTRAS) if self.extras else 0)

    @property
    def n_features(self) -> int:
        return self.n_basic + len(self.learned) * int(self.learned_components)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "projection"}
        d["extra"] = dict(self.extra)
        d["sigmas"] = list(self.sigmas)
        d["learned"] = list(self.learned)
        d["feature_set"] = self.feature_set
        if self.learned:
            from .learned import weights_id

            d["learned_weights"] = weights_id()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], arrays: dict[str, Any] | None = None) -> FeatureSettings:
        """Settings saved by :meth:`to_dict` (with the projection's ``arrays``, if learned).

        Raises
        ------
        InputError
            Learned features from other weights than this installation's.
        """
        learned = tuple(d.get("learned", ()))
        projection = None
        if learned:
            from .learned import LearnedProjection, weights_id

            saved, here = d.get("learned_weights"), weights_id()
            if saved != here:
                raise InputError(
                    f"this classifier uses learned features of the weights {saved!r}, this "
                    f"installation has {here!r}: train it again here"
                )
            projection = LearnedProjection.from_arrays(learned, arrays or {})
        return cls(
            sigmas=tuple(d.get("sigmas", cls.sigmas)),
            pixel_size=d.get("pixel_size"),
            unit=str(d.get("unit", "pixel")),
            extras=bool(d.get("extras", False)),
            basic=bool(d.get("basic", True)),
            learned=learned,
            learned_components=int(d.get("learned_components", LEARNED_COMPONENTS)),
            learned_downsample=int(d.get("learned_downsample", LEARNED_DOWNSAMPLE)),
            projection=projection,
        )

    def sigmas_for(self, pixel_size: float | None, unit: str = "pixel") -> tuple[float, ...]:
        """The sigmas in pixels of an image with ``pixel_size`` (same physical lengths).

        When either pixel size is unknown (or the units differ and cannot be
        converted) the sigmas are used as they are (pixels).
        """
        a = _to_angstrom(self.pixel_size, self.unit)
        b = _to_angstrom(pixel_size, unit)
        if a is None or b is None:
            return self.sigmas
        return tuple(s * a / b for s in self.sigmas)


def _to_angstrom(value: float | None, unit: str) -> float | None:
    from ..io.micrograph import to_angstrom

    return to_angstrom(value, unit) if value else None


def feature_names(settings: FeatureSettings) -> list[str]:
    """Names of the feature columns, in order."""
    names = []
    if settings.basic:
        names = ["intensity"]
        for s in settings.sigmas:
            names += [f"{n}@{s:g}" for n in PER_SCALE]
        if settings.extras:
            names += list(EXTRAS)
    if settings.learned:
        from .learned import learned_feature_names

        names += learned_feature_names(settings.learned, settings.learned_components)
    return names


def normalize_image(image: np.ndarray) -> np.ndarray:
    """``float32`` grey image scaled by its 0.5/99.5 percentiles to about ``[0, 1]``.

    Colour ``(H, W, 3|4)`` images are averaged over their first three channels.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32).mean(-1)
    if a.ndim != 2:
        raise InputError(f"image: expected a 2-D (or RGB) image, got shape {a.shape}")
    if min(a.shape) < 4:
        raise InputError(f"image: too small for pixel features ({a.shape[0]} x {a.shape[1]})")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise InputError("image: contains NaN or infinite values")
    lo, hi = np.percentile(a, (0.5, 99.5))
    if hi <= lo:
        hi = lo + 1.0
    return ((a - lo) / (hi - lo)).astype(np.float32)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian of a 2-D array with reflecting borders (truncated at 3 sigma).

    ``scipy.ndimage.gaussian_filter``'s values, bit for bit: its two passes
    (columns, then rows) each along the rows of a transposed copy, where
    they read contiguous memory (scipy's column pass over a C-ordered image
    takes about 4 x the row pass's time; the transposes cost less than that).
    """
    from scipy import ndimage as ndi

    if x.ndim != 2 or min(x.shape) < _TRANSPOSED_BLUR or x.dtype != np.float32:
        return ndi.gaussian_filter(x, sigma, mode="reflect", truncate=3.0)
    t = ndi.gaussian_filter1d(_transpose(x), sigma, axis=1, mode="reflect", truncate=3.0)
    return ndi.gaussian_filter1d(_transpose(t), sigma, axis=1, mode="reflect", truncate=3.0)


#: Images at least this high and wide are blurred by :func:`_blur` as transposed copies.
_TRANSPOSED_BLUR = 64


def _transpose(x: np.ndarray, rows: int = 16) -> np.ndarray:
    """A C-ordered copy of ``x.T``, a strip of ``rows`` rows at a time (stays in the cache:
    about 5 x faster than ``np.ascontiguousarray(x.T)`` for 1024 x 1024)."""
    h, w = x.shape
    out = np.empty((w, h), x.dtype)
    for i in range(0, h, rows):
        out[:, i : i + rows] = x[i : i + rows].T
    return out


def _eig2(a, b, c):
    """Eigenvalues (larger first) of the symmetric 2 x 2 matrices ``[[a, b], [b, c]]``."""
    m = 0.5 * (a + c)
    d = np.sqrt(0.25 * (a - c) ** 2 + b * b)
    return m + d, m - d


def _scale_maps(x: np.ndarray, sigma: float, g: np.ndarray | None = None) -> list[np.ndarray]:
    """The seven maps at one scale, on the current pyramid level (sigma in level pixels).

    ``g`` is ``_blur(x, sigma)`` when already computed.
    """
    g = _blur(x, sigma) if g is None else g
    gy, gx = np.gradient(g)
    grad = sigma * np.sqrt(gx * gx + gy * gy)
    hxy, hxx = np.gradient(gx)
    hyy = np.gradient(gy, axis=0)
    s2 = sigma * sigma
    h1, h2 = _eig2(hxx, hxy, hyy)
    t1, t2 = _eig2(_blur(gx * gx, sigma), _blur(gx * gy, sigma), _blur(gy * gy, sigma))
    std = np.sqrt(np.clip(_blur(x * x, sigma) - g * g, 0.0, None))
    return [
        g,
        grad,
        s2 * h1,
        s2 * h2,
        sigma * np.sqrt(np.clip(t1, 0.0, None)),
        sigma * np.sqrt(np.clip(t2, 0.0, None)),
        std,
    ]


def _extra_maps(
    img: np.ndarray, unit: float, part: int = 0, b1: np.ndarray | None = None
) -> list[np.ndarray]:
    """The nine fine-scale maps of :data:`EXTRAS` (``unit`` = the smallest sigma, pixels).

    ``part`` 1: the first five (differences of Gaussians, relative intensity,
    ``G_u/2``); 2: the last four (minima and maxima); 3: ``dog_1_2``,
    ``dog_2_4`` and ``G_u/2`` (the other two come from the scales' smooth
    maps, :func:`_derived_extras`); 0: all nine. ``b1`` is ``_blur(img,
    unit)`` when already computed.
    """
    from scipy import ndimage as ndi

    b1 = _blur(img, unit) if b1 is None else b1
    maps = []
    if part in (1, 3, 0):
        b2 = _blur(b1, math.sqrt(3.0) * unit)  # G_u * G_sqrt(3)u = G_2u
        b4 = _blur(b2, math.sqrt(12.0) * unit)
        if part == 3:  # dog_1_8 and relative_16 from the scales' columns (_derived_extras)
            return [b1 - b2, b2 - b4, _blur(img, 0.5 * unit)]
        b8 = _blur(b4, math.sqrt(48.0) * unit)
        b16 = _blur(b8, math.sqrt(192.0) * unit)
        maps += [b1 - b2, b2 - b4, b1 - b8, img - b16, _blur(img, 0.5 * unit)]
    if part != 1:
        w5 = max(3, 2 * round(2.5 * unit) + 1)
        w11 = max(5, 2 * round(5.5 * unit) + 1)
        if max(w5, w11) // 2 < min(b1.shape):
            (mn5, mn11), (mx5, mx11) = (
                _rank_filters(b1, (w5, w11), op) for op in (np.minimum, np.maximum)
            )
            maps += [mn5, mx5, mn11, mx11]
        else:  # windows wider than the image (several reflections): scipy's own filters
            maps += [
                ndi.minimum_filter(b1, w5),
                ndi.maximum_filter(b1, w5),
                ndi.minimum_filter(b1, w11),
                ndi.maximum_filter(b1, w11),
            ]
    return maps


def _rank_filters(x: np.ndarray, widths, op) -> list[np.ndarray]:
    """``op`` (``np.minimum`` or ``np.maximum``) over square windows of each odd width.

    The same values as ``scipy.ndimage.minimum_filter`` / ``maximum_filter``
    (mode ``"reflect"``; windows narrower than the image): rows first, then
    columns, each by doubling (the op over 2, 4, 8, ... neighbours, then two
    overlapping spans per window), at about a quarter of scipy's time.
    """
    r = max(widths) // 2

    def along(a: np.ndarray, axis: int, w: int) -> np.ndarray:
        # ``a`` is padded by ``r`` on both sides of ``axis``
        n = a.shape[axis] - 2 * r

        def take(m, start, length):
            return m[:, start : start + length] if axis == 1 else m[start : start + length]

        m, k, length = a, 1, a.shape[axis]
        while 2 * k <= w:  # m[i] = op over a[i : i + 2k]
            length -= k
            m = op(take(m, 0, length), take(m, k, length))
            k *= 2
        s = r - w // 2  # the window of output j starts at a[s + j]
        return op(take(m, s, n), take(m, s + w - k, n))

    rows = np.pad(x, [(0, 0), (r, r)], mode="symmetric")
    out = []
    for w in widths:
        cols = np.pad(along(rows, 1, w), [(r, r), (0, 0)], mode="symmetric")
        out.append(along(cols, 0, w))
    return out


def pixel_features(
    image: np.ndarray,
    settings: FeatureSettings | None = None,
    *,
    sigmas: tuple[float, ...] | None = None,
    normalized: bool = False,
) -> np.ndarray:
    """Per-pixel feature stack ``(H, W, F)`` float32 of a 2-D (or RGB) image.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, 3|4)``.
    settings : FeatureSettings, optional
        Default :class:`FeatureSettings()`.
    sigmas : tuple of float, optional
        Override the sigmas (in pixels of *this* image), e.g. from
        :meth:`FeatureSettings.sigmas_for` when applying a classifier to an
        image with another pixel size.
    normalized : bool
        ``image`` is already :func:`normalize_image`'d.

    Returns
    -------
    ndarray
        ``(H, W, n_features)`` float32, columns as :func:`feature_names`
        (learned features, if any, last; see :func:`compute_features`).
    """
    return compute_features(image, settings, sigmas=sigmas, normalized=normalized)[0]


def compute_features(
    image: np.ndarray,
    settings: FeatureSettings | None = None,
    *,
    sigmas: tuple[float, ...] | None = None,
    normalized: bool = False,
) -> tuple[np.ndarray, FeatureSettings]:
    """:func:`pixel_features` and the settings with the learned features' projection.

    With learned features and no ``settings.projection`` the principal axes
    are fitted on this image (training); the returned settings carry them.
    """
    settings = settings or FeatureSettings()
    sig = tuple(sigmas) if sigmas is not None else settings.sigmas
    if len(sig) != len(settings.sigmas):  # the override rescales the settings' own scales
        raise InputError(
            f"sigmas: expected {len(settings.sigmas)} scales (one per scale of the settings), "
            f"got {len(sig)}"
        )
    img = image if normalized else normalize_image(image)
    h, w = img.shape
    from ..core.limits import check_bytes

    # the (H, W, F) stack plus the full-resolution maps held until they are
    # written into it (about 24 of them: the fine scales, the extras, the image)
    check_bytes(
        4.0 * h * w * (settings.n_features + _HELD_MAPS),
        f"pixel features of a {h} x {w} image ({settings.n_features} per pixel)",
    )
    out = np.empty((h, w, settings.n_features), np.float32)
    nb = settings.n_basic
    if settings.basic:
        _basic_features(img, sig, settings.extras, out[..., :nb])
    if settings.learned:
        from dataclasses import replace

        from .learned import learned_maps

        _, proj = learned_maps(
            img,
            settings.learned,
            settings.learned_components,
            settings.projection,
            out=out[..., nb:],
            downsample=settings.learned_downsample,
        )
        if settings.projection is None:
            settings = replace(settings, projection=proj)
    return out, settings


def feature_threads() -> int:
    """Worker threads for the basic features (``NAPARI_INTERFACES_THREADS``, default: CPUs, max 2).

    scipy.ndimage and numpy release the GIL, so the scales run side by side;
    more than two workers gain nothing (the work is memory bound).
    """
    import os

    from ..core.config import env_int

    return min(2, env_int("NAPARI_INTERFACES_THREADS", min(2, os.cpu_count() or 1)))


#: Full-resolution float32 maps held at once by :func:`_basic_features` before
#: they are written into the stack (measured: about 96 MB for 1024 x 1024).
_HELD_MAPS = 24

#: Rows per block when the maps are written into the ``(H, W, F)`` stack: the
#: block's part of the stack stays in the cache while all its columns are written.
_ROW_BLOCK = 16


def _basic_features(
    img: np.ndarray, sig, extras: bool, out: np.ndarray, threads: int | None = None
) -> None:
    """The hand-made features of a normalized image into ``out (H, W, n_basic)``.

    The maps of each scale (and the extras) are computed as separate jobs,
    in ``threads`` worker threads (default :func:`feature_threads`), then
    written into the stack in blocks of rows (one pass over it instead of
    one strided pass per column). The values do not depend on ``threads``.
    """
    h, w = img.shape
    n = len(PER_SCALE)
    n_extra = len(EXTRAS) if extras else 0
    levels = []
    pyramid = [img]
    for s in sig:
        # sigma 2 at pyramid level L stands for sigma 2 * 2**L at full resolution
        level = int(math.floor(math.log2(s / 2.0))) if s > 2 else 0
        while len(pyramid) <= level and min(pyramid[-1].shape) >= 16:
            pyramid.append(_pool2(pyramid[-1]))
        levels.append(min(level, len(pyramid) - 1))

    # jobs return (column, full-resolution map) pairs or (column, (h', w', n) maps, factor)
    # G_u * I of the smallest scale u is shared by that scale and the extras (same call)
    unit = min(sig)
    b1 = (
        _blur(img, unit)
        if n_extra or any(s == unit and not lv for s, lv in zip(sig, levels))
        else None
    )

    def scale_job(i: int):
        level = levels[i]
        s = sig[i] / 2.0**level
        maps = _scale_maps(pyramid[level], s, b1 if level == 0 and s == unit else None)
        col = 1 + n * i
        if level:
            return [], [(col, np.stack(maps, -1), 2**level)]
        return [(col + j, m) for j, m in enumerate(maps)], []

    # the differences of Gaussians and the relative intensity are differences of the
    # smooth maps of the scales u, 2u, 4u, 8u, 16u where the sigmas have them
    derived = _derived_extras(sig, out.shape[-1] - n_extra) if n_extra else []

    def extras_job(part: int):
        # the extras follow the smallest scale (rescaled with it for other pixel sizes)
        col = out.shape[-1] - n_extra
        maps = _extra_maps(img, unit, part, b1)
        names = {1: EXTRAS[:5], 2: EXTRAS[5:], 3: ("dog_1_2", "dog_2_4", "smooth_half")}
        names = names.get(part, EXTRAS)
        return [(col + EXTRAS.index(k), m) for k, m in zip(names, maps)], []

    jobs = [lambda: ([(0, img)], [])]
    if n_extra:  # the costliest first, so two workers finish together
        jobs += [lambda: extras_job(3 if derived else 1), lambda: extras_job(2)]
    jobs += [lambda i=i: scale_job(i) for i in sorted(range(len(sig)), key=levels.__getitem__)]
    threads = feature_threads() if threads is None else max(1, int(threads))
    if threads > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(threads, thread_name_prefix="pixel-features") as pool:
            results = list(pool.map(lambda job: job(), jobs))
            full = [m for r in results for m in r[0]]
            coarse = [m for r in results for m in r[1]]
            step = -(-h // threads)
            list(
                pool.map(
                    lambda r0: _write_rows(out, full, coarse, r0, min(h, r0 + step), derived),
                    range(0, h, step),
                )
            )
    else:
        results = [job() for job in jobs]
        full = [m for r in results for m in r[0]]
        coarse = [m for r in results for m in r[1]]
        _write_rows(out, full, coarse, 0, h, derived)


def _derived_extras(sig, first: int) -> list[tuple[int, int, int]]:
    """``(column, a, b)``: the extras that are ``out[..., a] - out[..., b]`` (empty: none).

    ``dog_1_8`` (``G_u - G_8u``) and ``relative_16`` (the intensity minus
    ``G_16u``) from the smooth maps of the scales (``u`` = the smallest sigma),
    when the sigmas have ``u, 2u, 4u, 8u, 16u``: the scales above 2 px come from
    the pyramid (upsampled), which saves two full-resolution Gaussians of 43
    and 85 taps. ``dog_1_2`` and ``dog_2_4`` keep their own full-resolution
    Gaussians (derived from the pyramid they lost round-2 IoU on the benchmark
    micrographs, docs/benchmarks.md ninth round (a)). Other sigmas: the
    extras' own Gaussians.
    """
    unit = min(sig)
    smooth = {}
    for i, s in enumerate(sig):
        smooth.setdefault(s, 1 + len(PER_SCALE) * i)  # the "smooth" column of scale s
    if any(f * unit not in smooth for f in (1, 2, 4, 8, 16)):
        return []
    g = {f: smooth[f * unit] for f in (1, 2, 4, 8, 16)}
    pairs = {"dog_1_8": (g[1], g[8]), "relative_16": (0, g[16])}
    return [(first + EXTRAS.index(k), a, b) for k, (a, b) in pairs.items()]


def _lerp_plan(n_in: int, n_out: int, factor: int):
    """:func:`._resample._lerp_weights` along the columns, as strided slices.

    Output columns ``r, r + factor, ...`` (phase ``r``) inside the image read
    consecutive source columns with one weight, so each phase is two slices
    and two scalars; the few columns at the borders (clipped positions) keep
    index arrays. Returns ``(phases, (columns, i0, i1, t))``.
    """
    i0, i1, t = _lerp_weights(n_in, n_out, factor)
    phases = []
    rest = np.ones(n_out, bool)
    for r in range(min(factor, n_out)):
        cols = np.arange(r, n_out, factor)
        ok = (i1[cols] == i0[cols] + 1) & (t[cols] == t[cols[len(cols) // 2]])
        run = np.flatnonzero(ok)
        if len(run) < 2:
            continue
        a, b = run[0], run[-1]
        if not ok[a : b + 1].all() or not (np.diff(i0[cols[a : b + 1]]) == 1).all():
            continue
        c0, c1 = cols[a], cols[b]
        phases.append(
            (
                slice(c0, c1 + 1, factor),
                slice(i0[c0], i0[c1] + 1),
                slice(i1[c0], i1[c1] + 1),
                np.float32(1) - t[c0],
                t[c0],
            )
        )
        rest[cols[a : b + 1]] = False
    fb = np.flatnonzero(rest)
    return phases, (fb, i0[fb], i1[fb], t[fb])


def _write_rows(out: np.ndarray, full, coarse, start: int, stop: int, derived=()) -> None:
    """Rows ``start:stop`` of the stack: full-resolution maps copied, coarse ones upsampled.

    ``derived`` ``(column, a, b)``: then ``out[..., column] = out[..., a] - out[..., b]``.

    The upsampling is :func:`._resample._upsample` (bilinear, pixel centres
    aligned, rows first) done one block of rows at a time, with the same
    float32 operations per pixel (``a * (1 - t) + b * t``): the same values.
    """
    h, w = out.shape[:2]
    rows, cols = {}, {}
    for _, x, factor in coarse:
        key = (x.shape[0], factor)
        if key not in rows:
            rows[key] = _lerp_weights(x.shape[0], h, factor)
        key = (x.shape[1], factor)
        if key not in cols:
            cols[key] = _lerp_plan(x.shape[1], w, factor)
    for r0 in range(start, stop, _ROW_BLOCK):
        r1 = min(stop, r0 + _ROW_BLOCK)
        for col, m in full:
            out[r0:r1, :, col] = m[r0:r1]
        for col, x, factor in coarse:
            i0, i1, t = rows[(x.shape[0], factor)]
            a = x[i0[r0:r1]]
            b = x[i1[r0:r1]]
            tr = t[r0:r1, None, None]
            a *= 1 - tr
            b *= tr
            a += b
            dst = out[r0:r1, :, col : col + x.shape[-1]]
            phases, (fb, j0, j1, u) = cols[(x.shape[1], factor)]
            for d, s0, s1, c0, c1 in phases:
                np.add(a[:, s0] * c0, a[:, s1] * c1, out=dst[:, d])
            if len(fb):
                uc = u[None, :, None]
                dst[:, fb] = a[:, j0] * (1 - uc) + a[:, j1] * uc
        for col, a, b in derived:
            np.subtract(out[r0:r1, :, a], out[r0:r1, :, b], out=out[r0:r1, :, col])


def superpixels(image: np.ndarray, step: float = 8.0, *, normalized: bool = False) -> np.ndarray:
    """Compact edge-following superpixels: a seeded watershed ``(H, W)`` int32, labels from 1.

    Seeds on a square grid every ``step`` pixels flood the gradient magnitude
    of ``G_1 * I`` (scikit-image's watershed), so superpixel borders follow
    the image's edges, and a thin crack or a small pore gets its own
    superpixels rather than being cut across. The pixel classifier averages
    its probabilities inside each superpixel (:func:`~.workflow.classify_image`).
    """
    from skimage.segmentation import watershed

    img = image if normalized else normalize_image(image)
    h, w = img.shape
    st = max(2, int(round(step)))
    gy, gx = np.gradient(_blur(img, 1.0))
    grad = np.hypot(gx, gy)
    markers = np.zeros((h, w), np.int32)
    ys, xs = np.arange(st // 2, h, st), np.arange(st // 2, w, st)
    markers[np.ix_(ys, xs)] = np.arange(1, len(ys) * len(xs) + 1, dtype=np.int32).reshape(
        len(ys), len(xs)
    )
    return watershed(grad, markers).astype(np.int32, copy=False)


class FeatureCache:
    """Features of a few images, computed once (keyed by array identity and settings).

    A dock re-trains after every stroke: the features of the image it paints
    on are computed on the first stroke and reused, so a re-train costs only
    the classifier fit and prediction.
    """

    def __init__(self, max_items: int = 2):
        self.max_items = int(max_items)
        self._items: list[tuple[tuple, tuple[np.ndarray, FeatureSettings]]] = []
        self._segments: list[tuple[tuple, np.ndarray]] = []

    @staticmethod
    def key(image: np.ndarray, sigmas: tuple[float, ...], extras: bool = True) -> tuple:
        a = np.asarray(image)
        probe = a.reshape(-1)[:: max(1, a.size // 4096)]
        return (id(image), a.shape, str(a.dtype), hash(probe.tobytes()), tuple(sigmas), extras)

    def get(self, image: np.ndarray, settings: FeatureSettings, sigmas=None) -> np.ndarray:
        """The features of ``image`` (computed on first use)."""
        return self.get_with_settings(image, settings, sigmas)[0]

    def get_with_settings(
        self,
        image: np.ndarray,
        settings: FeatureSettings,
        sigmas=None,
        *,
        normalized: np.ndarray | None = None,
    ) -> tuple[np.ndarray, FeatureSettings]:
        """:func:`compute_features` of ``image``, computed on first use.

        ``normalized`` is :func:`normalize_image` of ``image`` when the caller
        has it (saves recomputing it).
        """
        sig = tuple(sigmas) if sigmas is not None else settings.sigmas
        proj = settings.projection
        k = self.key(image, sig, settings.extras) + (
            settings.basic,
            settings.learned,
            settings.learned_components,
            settings.learned_downsample,
            None if proj is None else proj.key(),
        )
        for key, item in self._items:
            if key == k:
                return item
        if normalized is None:
            item = compute_features(image, settings, sigmas=sig)
        else:
            item = compute_features(normalized, settings, sigmas=sig, normalized=True)
        self._items.append((k, item))
        del self._items[: -self.max_items]
        return item

    def segments(self, image: np.ndarray, step: float) -> np.ndarray:
        """The :func:`superpixels` of ``image`` (computed on first use, kept like features)."""
        k = ("segments",) + self.key(image, (float(step),))
        for key, seg in self._segments:
            if key == k:
                return seg
        seg = superpixels(image, step)
        self._segments.append((k, seg))
        del self._segments[: -self.max_items]
        return seg

    def clear(self) -> None:
        self._items.clear()
        self._segments.clear()
