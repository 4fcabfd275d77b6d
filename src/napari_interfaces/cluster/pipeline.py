"""The chip-communities workflow: images in, Labels + table + provenance out.

:func:`segment_by_communities` is the one engine workflow of the ``cluster``
domain: the Chip communities dock, ``napari-interfaces cluster`` and the
series application (:mod:`.series`) all call it. Stages (each timed in
``result.timings``): ``load`` (read, normalize, stack channels, optional
CLAHE), ``features`` (chip descriptors), ``graph`` (cosine kNN + optional
spatial edges), ``communities`` (Louvain, optional merge to K,
deterministic IDs), ``paint`` (votes -> Labels, table).

Every parameter is checked in one place, :func:`check_parameters`, before
anything is computed or written; a bad value raises a one-line
:class:`~napari_interfaces.core.errors.ParameterError` naming it.

Examples
--------
>>> from napari_interfaces.cluster.synthetic import texture_mosaic
>>> from napari_interfaces.cluster.pipeline import segment_by_communities
>>> img, truth = texture_mosaic((256, 256), n_classes=3, seed=1)
>>> res = segment_by_communities(img, chip=32, stride=16, merge_to=3)
>>> res.labels.shape, res.n_communities, res.unit
((256, 256), 3, 'pixel')
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, ParameterError
from ..core.params import non_negative, one_of, positive
from ..core.progress import Progress, as_progress
from .chips import ChipGrid, apply_clahe, make_grid
from .communities import METHODS, detect_communities, match_mapping, order_labels
from .communities import merge_to as merge_to_fn
from .features import EXTRACTORS, get_extractor
from .graph import FeatureTransform, knn_graph
from .images import prepare_images
from .paint import community_table, paint_labels

__all__ = [
    "ClusterResult",
    "check_parameters",
    "choose_chip",
    "load_images",
    "segment_by_communities",
]

BORDERS = ("shift", "drop")

#: Parameter names as the command line spells them (the dock and the API use the keys).
CLI_NAMES = {
    "chip": "--chip",
    "stride": "--stride",
    "features": "--features",
    "k": "--k",
    "resolution": "--resolution",
    "merge_to": "--merge-to",
    "seed": "--seed",
    "method": "--method",
    "spatial_weight": "--spatial-weight",
    "pca": "--pca",
    "border": "--border",
    "pixel_size": "--pixel-size",
    "feature_weights": "--feature-weights",
}


@dataclass
class ClusterResult:
    """Everything a run produced.

    Attributes
    ----------
    labels : (H, W) int32
        Community per pixel, ``1..K``.
    chip_labels : (N,) int64
        Community per chip.
    grid : ChipGrid
        Where the chips are (pixels).
    image : (H, W, C) float32
        The normalized input the chips were cut from.
    features : (N, D) float32
        Raw chip features; ``prepared`` is their standardized/PCA/unit version
        (``transform`` maps raw features of other images into the same space).
    table : list of dict
        Per-community statistics (see :func:`.paint.community_table`).
    timings : dict
        Seconds per stage.
    settings : dict
        Everything needed to rerun (extractor settings incl. weights sha256,
        the chip size actually used and how it was chosen).
    n_detected : int
        Communities found before merging.
    pixel_size : float or None
        Physical size of one pixel in ``unit`` (``None``: not known).
    unit : str
        ``"Å"``, ``"nm"`` or ``"pixel"`` (when ``pixel_size`` is None).
    provenance : dict
        Inputs (paths, shapes), package version, UTC time.
    transform : FeatureTransform or None
        Standardization + PCA fitted on this image's chips.
    """

    labels: np.ndarray
    chip_labels: np.ndarray
    grid: ChipGrid
    image: np.ndarray
    features: np.ndarray
    prepared: np.ndarray
    table: list[dict]
    timings: dict[str, float]
    settings: dict[str, Any] = field(default_factory=dict)
    n_detected: int = 0
    pixel_size: float | None = None
    unit: str = "pixel"
    provenance: dict[str, Any] = field(default_factory=dict)
    transform: FeatureTransform | None = None

    @property
    def n_communities(self) -> int:
        """Communities in the labels (after merging), ``== len(table)``."""
        return len(self.table)

    @property
    def scale(self) -> tuple[float, float]:
        """``(dy, dx)`` in :attr:`unit` (1 when the pixel size is unknown)."""
        s = float(self.pixel_size) if self.pixel_size else 1.0
        return (s, s)

    def summary(self) -> dict:
        """JSON-ready dict: settings, timings, table, pixel size, provenance."""
        return {
            "n_communities": self.n_communities,
            "n_detected": self.n_detected,
            "shape": list(self.grid.shape),
            "n_chips": self.grid.n_chips,
            "chip": self.grid.chip,
            "stride": self.grid.stride,
            "chip_source": self.settings.get("chip_source", "user"),
            "pixel_size": self.pixel_size,
            "unit": self.unit,
            "settings": self.settings,
            "provenance": self.provenance,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "communities": self.table,
        }


# ------------------------------------------------------------------ parameters
def _n(key: str, cli: bool) -> str:
    return CLI_NAMES.get(key, key) if cli else key


def check_parameters(
    *,
    chip: int | str = "auto",
    stride: int | str | None = None,
    features: str | dict = "fft",
    k: int = 10,
    resolution: float = 1.0,
    merge_to: int | None = None,
    seed: int = 0,
    method: str = "louvain",
    spatial_weight: float = 0.0,
    pca: int | None = 10,
    border: str = "shift",
    pixel_size: float | None = None,
    feature_weights: dict[str, float] | str | None = "auto",
    image_shape: Sequence[int] | None = None,
    cli: bool = False,
) -> dict[str, Any]:
    """Check every parameter of :func:`segment_by_communities`; return them normalized.

    Parameters
    ----------
    chip, stride : int, ``"auto"`` or None
        ``"auto"`` (or None) for the chip/stride: chosen from the image.
    image_shape : (H, W[, C]), optional
        With a shape, a chip larger than the image is refused too.
    cli : bool
        Name parameters as the command line does (``--merge-to``).

    Returns
    -------
    dict
        The values as ``int``/``float``; ``chip``/``stride`` may be ``"auto"``.

    Raises
    ------
    ParameterError
        One line that starts with the parameter's name.

    Examples
    --------
    >>> check_parameters(chip=32, stride=16)["stride"]
    16
    >>> check_parameters(merge_to=0, cli=True)
    Traceback (most recent call last):
    ...
    napari_interfaces.core.errors.ParameterError: --merge-to: must be a positive integer, got 0
    """
    out: dict[str, Any] = {}
    if chip is None or (isinstance(chip, str) and chip.strip().lower() == "auto"):
        out["chip"] = "auto"
    else:
        c = chip
        if isinstance(chip, str):
            try:
                c = int(chip)
            except ValueError:
                raise ParameterError(
                    _n("chip", cli), f"must be 'auto' or a size in pixels, got {chip!r}"
                ) from None
        out["chip"] = positive(_n("chip", cli), c, integer=True)
        if out["chip"] < 4:
            raise ParameterError(_n("chip", cli), f"must be at least 4 pixels, got {chip!r}")
    if stride is None or (isinstance(stride, str) and stride.strip().lower() == "auto"):
        out["stride"] = None
    else:
        out["stride"] = positive(_n("stride", cli), stride, integer=True)
        if out["chip"] != "auto" and out["stride"] > out["chip"]:
            raise ParameterError(
                _n("stride", cli),
                f"{out['stride']} is larger than the chip ({out['chip']}) and would skip pixels",
            )
    if image_shape is not None and out["chip"] != "auto":
        h, w = int(image_shape[0]), int(image_shape[1])
        if out["chip"] > min(h, w):
            raise ParameterError(
                _n("chip", cli),
                f"{out['chip']} px is larger than the image ({h}x{w} pixels): the image is "
                "smaller than one chip; use a smaller chip",
            )
    name = features.get("name") if isinstance(features, dict) else features
    one_of(_n("features", cli), str(name).lower(), tuple(EXTRACTORS))
    out["features"] = features if isinstance(features, dict) else str(features).lower()
    out["k"] = positive(_n("k", cli), k, integer=True)
    out["resolution"] = positive(_n("resolution", cli), resolution)
    out["merge_to"] = (
        None if merge_to is None else positive(_n("merge_to", cli), merge_to, integer=True)
    )
    out["seed"] = non_negative(_n("seed", cli), seed, integer=True)
    out["method"] = one_of(_n("method", cli), str(method).lower(), METHODS)
    out["spatial_weight"] = non_negative(_n("spatial_weight", cli), spatial_weight)
    out["pca"] = None if not pca else positive(_n("pca", cli), pca, integer=True)
    out["border"] = one_of(_n("border", cli), border, BORDERS)
    out["pixel_size"] = None if pixel_size is None else positive(_n("pixel_size", cli), pixel_size)
    out["feature_weights"] = _check_weights(feature_weights, _n("feature_weights", cli))
    return out


def _check_weights(w, name: str):
    if w is None or (isinstance(w, str) and w.lower() in ("none", "off")):
        return None
    if isinstance(w, str):
        return one_of(name, w.lower(), ("auto", "equal", "none"))
    if not isinstance(w, dict) or not w:
        raise ParameterError(
            name, f"expected 'auto', 'equal', None or {{group: weight}}, got {w!r}"
        )
    return {str(g): non_negative(f"{name} {g}", v) for g, v in w.items()}


def choose_chip(image: np.ndarray, stride: int | None = None) -> dict[str, Any]:
    """The chip grid for ``image`` chosen from its dominant length scale.

    See :func:`.scale.choose_chip`.

    Returns
    -------
    dict
        ``chip``, ``stride`` (pixels), ``source="auto"``, ``length_scale_px``
        and ``method`` (``"user"``, ``"coherence"`` or ``"size"``) and the ``scores``
        of the candidate chip sizes.
    """
    from .scale import choose_chip as _choose

    info = _choose(image, "auto", stride).settings()
    info["source"] = "auto"
    return info


# ------------------------------------------------------------------ inputs
def load_images(images) -> tuple[list, float | None, list[str]]:
    """Read image paths with :func:`napari_interfaces.io.micrograph.read_micrograph`.

    Returns ``(items, pixel size in Å or None, input descriptions)``; arrays
    pass through. The pixel size is the first file's that has one.
    """
    if isinstance(images, (str, Path, np.ndarray)):
        images = [images]
    items, inputs, pixel_size = [], [], None
    for item in list(images):
        if isinstance(item, (str, Path)):
            from ..io.micrograph import MICROGRAPH_SUFFIXES, read_micrograph

            p = Path(item)
            if not p.is_file():
                raise FileNotFoundError(f"{p}: no such image file")
            if p.suffix.lower() in MICROGRAPH_SUFFIXES:
                mic = read_micrograph(p)
                items.append(mic.data)
                if pixel_size is None and mic.pixel_size:
                    pixel_size = float(mic.pixel_size)
            else:
                items.append(p)
            inputs.append(str(p))
        else:
            arr = np.asarray(item)
            items.append(arr)
            inputs.append(f"array {arr.shape} {arr.dtype}")
    return items, pixel_size, inputs


def _provenance(inputs: list[str]) -> dict[str, Any]:
    from datetime import datetime, timezone

    from .. import __version__

    return {
        "workflow": "napari_interfaces.cluster.segment_by_communities",
        "version": __version__,
        "inputs": inputs,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _prepare(images, clahe: bool, pixel_size, unit):
    items, ps_file, inputs = load_images(images)  # InputError for a bad file
    img = prepare_images(items)
    if clahe:
        img = apply_clahe(img)
    if pixel_size is None and ps_file is not None:
        pixel_size, unit = ps_file, "Å"
    unit = unit if pixel_size else "pixel"
    return img, pixel_size, unit, inputs


def _extractor(features, weights, feature_options):
    from ..core.weights import WeightsError

    opts = dict(feature_options or {})
    if weights:
        opts["weights"] = weights
    try:
        extractor = get_extractor(features, **opts)
        settings = extractor.settings()  # loads and checks weights files now
    except WeightsError as exc:
        raise InputError(str(exc)) from None
    return extractor, settings


def _features(extractor, img, grid, progress) -> np.ndarray:
    from ..core.weights import WeightsError

    try:
        feats = extractor(img, grid, progress)
    except WeightsError as exc:
        raise InputError(str(exc)) from None
    if not np.all(np.isfinite(feats)):
        raise InputError("feature extraction produced NaN/inf (is the image constant in places?)")
    return feats


def _grid(img, chip, stride, border) -> tuple[ChipGrid, dict]:
    if chip == "auto":
        info = choose_chip(img, stride)
        chip_, stride_ = info["chip"], min(info["stride"], info["chip"])
    else:
        info = {"source": "user"}
        chip_, stride_ = chip, (max(1, chip // 2) if stride is None else stride)
    h, w = img.shape[:2]
    if chip_ > min(h, w):
        raise ParameterError(
            "chip",
            f"{chip_} px is larger than the image ({h}x{w} pixels): the image is smaller "
            "than one chip; use a smaller chip",
        )
    grid = make_grid(img.shape, chip_, stride_, border)
    check_chip_memory(grid.n_chips, img.shape[-1])
    return grid, info


def check_chip_memory(n_chips: int, channels: int = 1, k: int = 10, dims: int = 64) -> None:
    """Refuse a chip grid whose features and graph would not fit in memory (before computing).

    About ``n_chips x (3 feature copies of dims x channels float32 + k edges x 24 B)``;
    a stride of 1 px on a large image asks for millions of chips.
    """
    from ..core.limits import check_bytes

    per_chip = 3 * 4 * dims * max(1, channels) + 24 * 2 * k + 64
    check_bytes(int(n_chips) * per_chip, f"{n_chips} chips (use a larger --stride or --chip)")


def segment_by_communities(
    images,
    chip: int | str = "auto",
    stride: int | None = None,
    features: str | dict = "fft",
    k: int = 10,
    resolution: float = 1.0,
    merge_to: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    *,
    weights: str | None = None,
    clahe: bool = False,
    border: str = "shift",
    spatial_weight: float = 0.0,
    method: str = "louvain",
    pca: int | None = 10,
    refine: bool = False,
    reference_labels: np.ndarray | None = None,
    feature_options: dict | None = None,
    feature_weights: dict[str, float] | str | None = "auto",
    pixel_size: float | None = None,
    unit: str = "Å",
) -> ClusterResult:
    """Unsupervised segmentation of a micrograph by communities of similar chips.

    Parameters
    ----------
    images : path, array, or sequence of them
        One image, or several co-registered images used as channels.
    chip : int or ``"auto"``
        Chip side in pixels; ``"auto"`` (default) chooses it from the image's
        length scales (reported in ``settings["chip"]`` / ``chip_source``).
    stride : int, optional
        Chip step in pixels (``stride < chip`` overlaps chips); default: the
        automatic choice, or ``chip // 2``.
    features : str or dict
        ``fft`` | ``filterbank`` | ``resnet50`` | ``learned`` or a settings
        dict with ``name``.
    k : int
        Neighbours of every chip in the cosine kNN graph: more neighbours
        join similar regions more readily (fewer, larger communities).
    resolution : float
        Louvain resolution: above 1 splits into more, smaller communities;
        below 1 gives fewer, larger ones.
    merge_to : int, optional
        Merge communities down to this many (Ward on mean features).
    seed : int
        Seed of the community detection.
    progress : Progress, optional
        Progress and cancellation (see :mod:`napari_interfaces.core.progress`).
    weights : str, optional
        Weights file for ``resnet50`` / ``learned``.
    clahe : bool
        Apply CLAHE to every channel before chipping.
    border : str
        ``shift`` (cover the far edge) or ``drop``.
    spatial_weight : float
        Weight of edges between 4-adjacent chips (0 = none): higher values
        favour spatially compact communities.
    method : str
        ``louvain`` (default) or ``leiden`` (optional, GPL, if installed).
    pca : int or None
        Components kept for the graph.
    refine : bool
        Boundary refinement when painting.
    reference_labels : (H, W) array, optional
        Previous labelling of the same image: IDs are matched to it (stable colours).
    feature_options : dict, optional
        Extra extractor settings (``batch``, ``device``, ``input_size`` ...).
    feature_weights : ``"auto"``, ``"equal"``, dict or None
        Weighting of the extractor's feature groups (texture vs intensity).
        Each group is first balanced so that neither dominates by its number
        of columns, and a constant "lift" column keeps regions of mid-range
        features apart (:class:`.graph.FeatureTransform`). ``"auto"``
        (default): weights from a first clustering with equal weights (the
        share of each group's variance between communities,
        :func:`.features.auto_group_weights`); ``"equal"``: 1 each; a dict
        such as ``{"texture": 1, "intensity": 0.5}``: as given; ``None``:
        columns standardized one by one, no groups (issue 7's method). The
        weighting used is reported in ``settings["feature_weighting"]``.
    pixel_size : float, optional
        Pixel size in ``unit``; default: read from the first image file (Å).
    unit : str
        Unit of ``pixel_size`` (``"Å"`` or ``"nm"``).

    Returns
    -------
    ClusterResult

    Raises
    ------
    ParameterError
        A parameter out of range (named), or a chip larger than the image.
    InputError
        Unreadable, constant or NaN images; a bad weights file.
    """
    p = check_parameters(
        chip=chip,
        stride=stride,
        features=features,
        k=k,
        resolution=resolution,
        merge_to=merge_to,
        seed=seed,
        method=method,
        spatial_weight=spatial_weight,
        pca=pca,
        border=border,
        pixel_size=pixel_size,
        feature_weights=feature_weights,
    )
    progress = as_progress(progress)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    img, pixel_size, unit, inputs = _prepare(images, clahe, p["pixel_size"], unit)
    grid, chip_info = _grid(img, p["chip"], p["stride"], p["border"])
    timings["load"] = time.perf_counter() - t0

    t = time.perf_counter()
    extractor, ext_settings = _extractor(p["features"], weights, feature_options)
    feats = _features(extractor, img, grid, progress)
    timings["features"] = time.perf_counter() - t

    progress.start(3, "similarity graph")
    t = time.perf_counter()
    transform = fit_transform(
        extractor, feats, img.shape[-1], p, feature_weights=p["feature_weights"]
    )
    prepared = transform(feats)
    adj = knn_graph(
        prepared, k=p["k"], prepared=True, grid=grid, spatial_weight=p["spatial_weight"]
    )
    timings["graph"] = time.perf_counter() - t
    progress.advance(description="communities")

    t = time.perf_counter()
    lab = detect_communities(adj, method=p["method"], resolution=p["resolution"], seed=p["seed"])
    n_detected = int(lab.max()) + 1
    if p["merge_to"]:
        lab = merge_to_fn(lab, prepared, p["merge_to"])
    chip_labels = order_labels(lab, chip_intensity(img, grid))
    timings["communities"] = time.perf_counter() - t
    progress.advance(description="painting")

    t = time.perf_counter()
    labels = paint_labels(chip_labels, grid, image=img, refine=refine)
    if reference_labels is not None:
        labels, chip_labels = _match_reference(labels, chip_labels, reference_labels)
    table = community_table(labels, chip_labels, img, prepared)
    timings["paint"] = time.perf_counter() - t
    progress.advance()
    timings["total"] = time.perf_counter() - t0

    settings = {
        "chip": grid.chip,
        "stride": grid.stride,
        "chip_source": chip_info.get("source", "user"),
        "border": grid.border,
        "features": ext_settings,
        "k": p["k"],
        "resolution": p["resolution"],
        "merge_to": p["merge_to"],
        "seed": p["seed"],
        "method": p["method"],
        "pca": p["pca"],
        "clahe": bool(clahe),
        "spatial_weight": p["spatial_weight"],
        "refine": bool(refine),
        "channels": int(img.shape[-1]),
    }
    if chip_info.get("source") == "auto":
        settings["chip_auto"] = {
            k: v for k, v in chip_info.items() if k not in ("chip", "stride", "source")
        }
    settings["feature_weighting"] = {**transform.report, "mode": _mode(p["feature_weights"])}
    if transform.grouped:
        settings["feature_weights"] = {
            g: r["weight"] for g, r in transform.report.get("groups", {}).items()
        }
    return ClusterResult(
        labels.astype(np.int32),
        chip_labels,
        grid,
        img,
        feats,
        prepared,
        table,
        timings,
        settings,
        n_detected,
        pixel_size,
        unit,
        _provenance(inputs),
        transform,
    )


def fit_transform(extractor, feats, n_channels: int, params: dict, feature_weights="auto"):
    """The :class:`.graph.FeatureTransform` for ``extractor``'s features.

    ``feature_weights``: see :func:`segment_by_communities`; ``params`` are
    the checked parameters (``pca``, ``k``, ``seed``, ``merge_to``).
    """
    pca = params.get("pca", 10)
    if feature_weights is None:
        return FeatureTransform.fit(feats, pca=pca)
    try:
        groups = extractor.groups(n_channels)
    except (AttributeError, NotImplementedError):
        if feature_weights == "auto":
            return FeatureTransform.fit(feats, pca=pca)
        raise ParameterError(
            "feature_weights", f"the {extractor.name!r} features have no feature groups"
        ) from None
    if feature_weights == "auto":
        from .features import auto_group_weights

        weights = auto_group_weights(
            feats,
            groups,
            n_regions=params.get("merge_to"),
            k=params.get("k", 10),
            seed=params.get("seed", 0),
            pca=pca,
        )
    elif feature_weights == "equal":
        weights = None
    else:
        weights = dict(feature_weights)
    return FeatureTransform.fit(feats, pca=pca, groups=groups, weights=weights)


def _mode(w) -> str:
    return "columns" if w is None else (w if isinstance(w, str) else "given")


def _match_reference(labels, chip_labels, reference_labels):
    ref = np.asarray(reference_labels)
    if ref.shape != labels.shape:
        raise InputError(f"reference labels {ref.shape} do not match the image {labels.shape}")
    mapping = match_mapping(labels, ref)
    lut = np.arange(int(labels.max()) + 1)
    for a, b in mapping.items():
        lut[a] = b
    return lut[labels].astype(np.int32), lut[chip_labels]


def chip_intensity(img: np.ndarray, grid: ChipGrid) -> np.ndarray:
    """Mean intensity of every chip (channel mean), for ordering community IDs."""
    from .features import _box_stats

    x = img.mean(-1) if img.ndim == 3 else img
    return _box_stats(np.ascontiguousarray(x, np.float32), grid.ys, grid.xs, grid.chip)[0]
