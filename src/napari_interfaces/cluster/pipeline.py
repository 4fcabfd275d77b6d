"""The chip-communities workflow: images in, Labels + table + provenance out.

Every chip workflow of the ``cluster`` domain is one composition: a **chip
featurizer** (:func:`chip_features`: read, normalize, stack channels,
optional CLAHE, cut the chip grid, describe every chip) followed by a
**labeller** strategy that gives every chip a label, then painting
(:func:`label_chips`):

- :class:`Communities` -- unsupervised: cosine kNN graph + Louvain
  communities (:func:`segment_by_communities`, the Chip communities dock and
  ``napari-interfaces cluster``);
- :class:`.series.SeriesReference` -- the communities of a reference image
  applied to the next images of a series;
- :class:`.corrections.CorrectionModel` -- a classifier learnt from corrected
  labels (``napari-interfaces cluster-apply``).

Stages (each timed in ``result.timings``): ``load``, ``features``, ``graph``
and ``communities`` (the labeller), ``paint``.

The parameters are one spec, :class:`ClusterParams`, validated once when it
is made: a bad value raises a one-line
:class:`~napari_interfaces.core.errors.ParameterError` naming the field
before anything is computed or written.

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
from typing import Any, Protocol

import numpy as np

from ..core.errors import InputError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from ..io.folders import poll_param, watch_timeout_param
from .chips import ChipGrid, apply_clahe, make_grid
from .communities import METHODS, detect_communities, match_mapping, order_labels
from .communities import merge_to as merge_to_fn
from .features import EXTRACTORS, get_extractor
from .graph import FeatureTransform, knn_graph
from .images import prepare_images
from .paint import community_table, paint_labels

__all__ = [
    "ChipFeatures",
    "ChipLabels",
    "ChipSetup",
    "ClusterFiles",
    "ClusterParams",
    "ClusterResult",
    "Communities",
    "chip_features",
    "choose_chip",
    "label_chips",
    "load_images",
    "segment_by_communities",
]

BORDERS = ("shift", "drop")
#: Settings the chip featurizer reports (a labeller's settings never override them).
_GRID_KEYS = ("chip", "stride", "chip_source", "border", "features")


# ------------------------------------------------------------------ parameters
@dataclass(frozen=True)
class ClusterParams(Spec):
    """Chip communities: chips, features, similarity graph, communities."""

    chip: int | None = param(
        None,
        "side of the square chips the image is cut into; auto: chosen from the image's "
        "dominant length scale (a chip holds a few periods) and size",
        unit="px",
        lo=4,
        hi=4096,
        none="auto",
        step=8,
    )
    stride: int | None = param(
        None,
        "step between chips (smaller = finer boundaries, slower); auto: the automatic "
        "choice, or half the chip (every pixel gets 4 votes)",
        unit="px",
        lo=1,
        hi=4096,
        none="auto",
        step=8,
    )
    features: str = param(
        "fft",
        "how each chip is described: fft (power spectrum; lattices), filterbank (Gaussian "
        "derivatives), learned (this project's encoder) or resnet50 (needs a weights file); "
        "all include the chip's intensity statistics",
        choices=tuple(EXTRACTORS),
    )
    weights: Path | None = param(
        None,
        "weights file for resnet50 (torchvision layout) or a custom learned encoder",
        metavar="FILE",
        label="weights",
    )
    merge_to: int | None = param(
        None,
        "merge communities down to this many (Ward on their mean features); off: keep what "
        "the community detection found",
        lo=1,
        hi=1000,
        none="off",
        metavar="N",
        label="merge to",
    )
    pixel_size: float | None = param(
        None,
        "pixel size written with the labels (auto: read from the image file or layer)",
        unit="Å",
        lo=0,
        lo_open=True,
        none="auto",
    )
    feature_weights: str | None = param(
        "auto",
        "weights of the texture and intensity feature groups (each first balanced so that "
        "neither dominates by its number of columns): auto (from a first clustering), equal, "
        "off (every column on its own) or e.g. texture=1,intensity=0.5",
        none="off",
        advanced=True,
        metavar="auto|equal|off|GROUP=W,...",
        label="feature weighting",
    )
    clahe: bool = param(
        False,
        "contrast-limited adaptive histogram equalization before chipping (evens out uneven "
        "illumination)",
        advanced=True,
        label="CLAHE",
    )
    k: int = param(
        10,
        "neighbours per chip in the similarity graph: more link more chips (fewer, larger "
        "communities); fewer keep rare regions apart",
        lo=1,
        hi=1000,
        advanced=True,
        label="k neighbours",
    )
    resolution: float = param(
        1.0,
        "Louvain resolution: above 1 splits the graph into more, smaller communities; below 1 "
        "gives fewer, larger ones",
        lo=0,
        lo_open=True,
        hi=100,
        advanced=True,
        step=0.1,
    )
    seed: int = param(
        0,
        "seed of the community detection (same seed = same result)",
        lo=0,
        hi=2**31 - 1,
        advanced=True,
    )
    method: str = param(
        "louvain",
        "community detection: louvain, or leiden (needs the optional leidenalg)",
        choices=METHODS,
        advanced=True,
    )
    spatial_weight: float = param(
        0.0,
        "weight of extra edges between neighbouring chips: 0 = regions from texture alone; "
        "higher values favour spatially compact regions",
        lo=0,
        hi=100,
        advanced=True,
        step=0.1,
    )
    pca: int | None = param(
        10,
        "principal components of the features kept for the similarity graph",
        lo=1,
        hi=1000,
        none="off",
        advanced=True,
    )
    border: str = param(
        "shift",
        "chips at the image's far edge: shift (the last chip covers the edge) or drop",
        choices=BORDERS,
        advanced=True,
    )
    refine: bool = param(
        False,
        "refine community boundaries per pixel (local mean and contrast) inside chips where "
        "communities meet",
        advanced=True,
        label="refine boundaries",
    )

    def check(self) -> None:
        if self.chip is not None and self.stride is not None and self.stride > self.chip:
            raise ParameterError(
                "stride",
                f"{self.stride} is larger than the chip ({self.chip}) and would skip pixels",
            )
        fw = self.feature_weights
        if isinstance(fw, str):
            text = fw.strip().lower()
            if text in ("none", "off"):
                object.__setattr__(self, "feature_weights", None)
            elif text in ("auto", "equal"):
                object.__setattr__(self, "feature_weights", text)
            else:
                self.group_weights  # noqa: B018 - parses and checks "GROUP=W,..."

    @property
    def group_weights(self) -> dict[str, float] | str | None:
        """``feature_weights`` for the engine: ``"auto"``, ``"equal"``, None or ``{group: w}``."""
        fw = self.feature_weights
        if fw is None or fw in ("auto", "equal"):
            return fw
        out: dict[str, float] = {}
        for part in fw.split(","):
            name, sep, value = part.partition("=")
            name = name.strip()
            try:
                w = float(value)
            except ValueError:
                sep = ""
            if not sep or not name or not np.isfinite(w):
                raise ParameterError(
                    "feature_weights",
                    f"expected auto, equal, off or GROUP=WEIGHT[,GROUP=WEIGHT], got {fw!r}",
                )
            if w < 0:
                raise ParameterError(
                    "feature_weights", f"{name}: the weight must be ≥ 0, got {w:g}"
                )
            out[name] = w
        return out

    def check_image(self, shape: Sequence[int]) -> None:
        """Refuse a chip larger than an image of ``shape`` (H, W[, C])."""
        if self.chip is not None:
            _check_fits(self.chip, shape)


def _weights_text(weights: dict) -> str:
    """``{"texture": 1, "intensity": 0.5}`` -> ``"texture=1,intensity=0.5"``."""
    return ",".join(f"{g}={float(v)!r}" for g, v in weights.items())


def _check_fits(chip: int, shape: Sequence[int], whose: str = "") -> None:
    h, w = int(shape[0]), int(shape[1])
    if chip > min(h, w):
        raise ParameterError(
            "chip",
            f"{chip} px{whose} is larger than the image ({h}x{w} pixels): the image is smaller "
            "than one chip; use a smaller chip",
        )


@dataclass(frozen=True)
class ClusterFiles(Spec):
    """Files of ``napari-interfaces cluster`` (and of its series application)."""

    images: Path | None = param(
        None,
        "image file(s); several = co-registered channels of one specimen",
        positional=True,
        nargs="*",
        metavar="IMAGE",
        gui=False,
    )
    out: Path | None = param(
        None,
        "output labels (.tif, .tiff or .png; uint16), or a folder when labelling a series "
        "(apply to / watch) (required)",
        metavar="LABELS.tif|FOLDER",
        gui=False,
    )
    apply_to: Path | None = param(
        None,
        "label every image in FOLDER with the communities of IMAGE (default IMAGE: FOLDER's "
        "first image); the output is then a folder",
        metavar="FOLDER",
        gui=False,
        group="series",
    )
    watch: Path | None = param(
        None,
        "label images in FOLDER as they are written (stop with Ctrl-C or the watch timeout); "
        "the output is then a folder",
        metavar="FOLDER",
        gui=False,
        group="series",
    )
    watch_timeout: float | None = watch_timeout_param(group="series")
    poll: float = poll_param(group="series")
    reference: Path | None = param(
        None,
        "a series reference (reference.json) written by an earlier series run, instead of IMAGE",
        metavar="REF.json",
        gui=False,
        group="series",
    )
    overwrite: bool = param(False, "replace existing outputs", gui=False)
    json: bool = param(False, "print the community table as JSON", gui=False)


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


def _extractor(features, weights, feature_options):
    from ..core.weights import WeightsError

    opts = dict(feature_options or {})
    if weights:
        opts["weights"] = str(weights)
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


def _grid(img, chip, stride, border, owner: str = "") -> tuple[ChipGrid, dict]:
    if chip is None:
        info = choose_chip(img, stride)
        chip_, stride_ = info["chip"], min(info["stride"], info["chip"])
    else:
        info = {"source": owner or "user"}
        chip_, stride_ = chip, (max(1, chip // 2) if stride is None else stride)
    _check_fits(chip_, img.shape, f" (the {owner}'s)" if owner else "")
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
    check_bytes(int(n_chips) * per_chip, f"{n_chips} chips (use a larger stride or chip)")


# ------------------------------------------------------------------ the composition
@dataclass
class ChipFeatures:
    """One image cut into chips and described: what every labeller starts from.

    Attributes
    ----------
    image : (H, W, C) float32
        The normalized input (channels stacked, CLAHE applied if asked).
    grid : ChipGrid
        Where the chips are (pixels).
    features : (N, D) float32
        Raw chip features.
    extractor : Extractor
        The extractor that made them (its feature groups weight them).
    settings : dict
        The extractor's settings (name, options, weights sha256).
    pixel_size : float or None
        In ``unit``; ``unit`` is ``"pixel"`` when unknown.
    inputs : list of str
        What was read (paths, array shapes).
    chip_info : dict
        How the chip was chosen (``source``: ``user``, ``auto``, ``reference``, ``model``).
    clahe : bool
    timings : dict
        Seconds of ``load`` and ``features``.
    """

    image: np.ndarray
    grid: ChipGrid
    features: np.ndarray
    extractor: Any
    settings: dict
    pixel_size: float | None
    unit: str
    inputs: list[str]
    chip_info: dict
    clahe: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def chip_features(
    images,
    features: str | dict = "fft",
    *,
    chip: int | None = None,
    stride: int | None = None,
    border: str = "shift",
    clahe: bool = False,
    weights: str | Path | None = None,
    feature_options: dict | None = None,
    pixel_size: float | None = None,
    unit: str = "Å",
    owner: str = "",
    progress: Progress | None = None,
) -> ChipFeatures:
    """The chip featurizer: read, normalize, cut the chip grid and describe every chip.

    Parameters
    ----------
    images : path, array, or sequence of them
        One image, or several co-registered images used as channels.
    features : str or dict
        Extractor name, or its settings (``name`` + options; a ``sha256`` is
        checked against the weights file used).
    chip, stride : int, optional
        The grid (pixels); chip None = chosen from the image, stride None =
        the automatic choice or half the chip.
    owner : str
        Whose grid and extractor these are (``"reference"``, ``"model"``),
        for the messages; empty for the user's.

    Raises
    ------
    ParameterError
        The chip is larger than the image.
    InputError
        Unreadable images, a bad or different weights file, NaN features.
    """
    progress = as_progress(progress)
    t0 = time.perf_counter()
    items, ps_file, inputs = load_images(images)  # InputError for a bad file
    img = prepare_images(items)
    if clahe:
        img = apply_clahe(img)
    if pixel_size is None and ps_file is not None:
        pixel_size, unit = ps_file, "Å"
    unit = unit if pixel_size else "pixel"
    grid, chip_info = _grid(img, chip, stride, border, owner)
    t1 = time.perf_counter()
    extractor, settings = _extractor(features, weights, feature_options)
    expected = features.get("sha256") if isinstance(features, dict) else None
    if expected and settings.get("sha256") not in (None, expected):
        raise InputError(
            f"weights file {settings.get('weights')} differs from the {owner or 'given'} "
            f"settings' (sha256 {expected[:12]}...)"
        )
    feats = _features(extractor, img, grid, progress)
    t2 = time.perf_counter()
    return ChipFeatures(
        img,
        grid,
        feats,
        extractor,
        settings,
        pixel_size,
        unit,
        inputs,
        chip_info,
        bool(clahe),
        {"load": t1 - t0, "features": t2 - t1},
    )


@dataclass(frozen=True)
class ChipSetup:
    """How the chips are cut and described: what a saved reference or model keeps.

    :class:`.series.SeriesReference` and :class:`.corrections.CorrectionModel`
    store it (:meth:`to_meta` / :meth:`from_meta`) and cut and describe new
    images with it (:meth:`features`), exactly as the run they came from.
    """

    extractor: dict
    chip: int
    stride: int
    border: str = "shift"
    clahe: bool = False

    @classmethod
    def of(cls, obj: Any) -> ChipSetup:
        """The setup held by ``obj`` (attributes ``extractor``, ``chip``, ``stride``, ...)."""
        return cls(obj.extractor, obj.chip, obj.stride, obj.border, obj.clahe)

    @classmethod
    def from_result(cls, result: ClusterResult) -> ChipSetup:
        """The setup a :class:`ClusterResult` was made with."""
        return cls(
            dict(result.settings["features"]),
            int(result.grid.chip),
            int(result.grid.stride),
            result.grid.border,
            bool(result.settings.get("clahe", False)),
        )

    @classmethod
    def from_meta(cls, meta: dict) -> ChipSetup:
        """Read from a saved file's settings (raises KeyError/ValueError when malformed)."""
        return cls(
            meta["extractor"],
            int(meta["chip"]),
            int(meta["stride"]),
            meta.get("border", "shift"),
            bool(meta.get("clahe", False)),
        )

    def to_meta(self) -> dict:
        """The settings written to a file (JSON-able)."""
        return {
            "extractor": self.extractor,
            "chip": self.chip,
            "stride": self.stride,
            "border": self.border,
            "clahe": self.clahe,
        }

    def fields(self) -> dict:
        """As keyword arguments of the classes that hold a setup."""
        return {**self.to_meta(), "extractor": dict(self.extractor)}

    def features(
        self,
        images,
        *,
        owner: str,
        weights: str | Path | None = None,
        pixel_size: float | None = None,
        unit: str = "Å",
        progress: Progress | None = None,
    ) -> ChipFeatures:
        """:func:`chip_features` of ``images`` with this setup (``owner`` names it in messages)."""
        return chip_features(
            images,
            dict(self.extractor),
            chip=self.chip,
            stride=self.stride,
            border=self.border,
            clahe=self.clahe,
            weights=weights,
            pixel_size=pixel_size,
            unit=unit,
            owner=owner,
            progress=progress,
        )


@dataclass
class ChipLabels:
    """What a labeller gives the chips of one image.

    Attributes
    ----------
    labels : (N,) int64
        Label per chip (``1..K``).
    prepared : (N, P) float32
        The features in the labeller's space (community statistics).
    transform : FeatureTransform or None
        Raw features -> ``prepared``.
    settings : dict
        The labeller's settings (reported with the result).
    n_detected : int
        Labels found before any merging.
    timings : dict
        Seconds per stage.
    workflow : str
        Named in the result's provenance.
    """

    labels: np.ndarray
    prepared: np.ndarray
    transform: FeatureTransform | None
    settings: dict
    n_detected: int
    timings: dict[str, float] = field(default_factory=dict)
    workflow: str = "napari_interfaces.cluster.segment_by_communities"


class Labeller(Protocol):
    """A strategy that labels the chips of one image (see :func:`label_chips`)."""

    def __call__(self, chips: ChipFeatures, progress: Progress) -> ChipLabels: ...


@dataclass
class Communities:
    """Labeller: communities of a cosine kNN graph of the chips (unsupervised)."""

    params: ClusterParams

    def __call__(self, chips: ChipFeatures, progress: Progress) -> ChipLabels:
        p = self.params
        progress.start(2, "similarity graph")
        t = time.perf_counter()
        transform = fit_transform(chips.extractor, chips.features, chips.image.shape[-1], p)
        prepared = transform(chips.features)
        adj = knn_graph(
            prepared, k=p.k, prepared=True, grid=chips.grid, spatial_weight=p.spatial_weight
        )
        t_graph = time.perf_counter() - t
        progress.advance(description="communities")
        t = time.perf_counter()
        lab = detect_communities(adj, method=p.method, resolution=p.resolution, seed=p.seed)
        n_detected = int(lab.max()) + 1
        if p.merge_to:
            lab = merge_to_fn(lab, prepared, p.merge_to)
        chip_labels = order_labels(lab, chip_intensity(chips.image, chips.grid))
        t_comm = time.perf_counter() - t
        progress.advance(description="painting")
        settings = {
            "k": p.k,
            "resolution": p.resolution,
            "merge_to": p.merge_to,
            "seed": p.seed,
            "method": p.method,
            "pca": p.pca,
            "spatial_weight": p.spatial_weight,
            "feature_weighting": {**transform.report, "mode": _mode(p.group_weights)},
        }
        if transform.grouped:
            settings["feature_weights"] = {
                g: r["weight"] for g, r in transform.report.get("groups", {}).items()
            }
        return ChipLabels(
            chip_labels,
            prepared,
            transform,
            settings,
            n_detected,
            {"graph": t_graph, "communities": t_comm},
        )


@dataclass
class Reference:
    """Labeller: the nearest community of a series reference (:class:`.series.SeriesReference`)."""

    reference: Any
    learn_new: bool = True

    def __call__(self, chips: ChipFeatures, progress: Progress) -> ChipLabels:
        ref = self.reference
        t = time.perf_counter()
        prepared = ref.transform(chips.features)
        chip_labels, new_ids = ref.assign(prepared, learn_new=self.learn_new)
        settings = {
            **{k: v for k, v in ref.settings.items() if k != "chip_auto"},
            "series": {
                "reference": ref.source.get("inputs", []),
                "reference_ids": [int(i) for i in ref.ids if int(i) not in new_ids],
                "new_ids": new_ids,
            },
        }
        return ChipLabels(
            chip_labels,
            prepared,
            ref.transform,
            settings,
            len(np.unique(chip_labels)),
            {"communities": time.perf_counter() - t},
            "napari_interfaces.cluster.series.SeriesReference.label",
        )


@dataclass
class Classifier:
    """Labeller: a chip classifier learnt from corrections (:class:`.corrections.CorrectionModel`)."""

    model: Any

    def __call__(self, chips: ChipFeatures, progress: Progress) -> ChipLabels:
        model, feats = self.model, chips.features
        if feats.shape[1] != model.mean.shape[0]:
            raise InputError(
                f"the model expects {model.mean.shape[0]} features per chip, the images give "
                f"{feats.shape[1]} (different number of channels?)"
            )
        t = time.perf_counter()
        chip_labels = model.predict(feats)
        return ChipLabels(
            chip_labels,
            feats,
            None,
            {"classifier": "logistic_regression", "classes": [int(c) for c in model.classes]},
            len(np.unique(chip_labels)),
            {"classify": time.perf_counter() - t},
            "napari_interfaces.cluster.corrections.apply_model",
        )


def label_chips(
    chips: ChipFeatures,
    labeller: Labeller,
    *,
    refine: bool = False,
    reference_labels: np.ndarray | None = None,
    table: bool = True,
    progress: Progress | None = None,
) -> ClusterResult:
    """Label the chips with ``labeller`` and paint the labels back: the one composition.

    Parameters
    ----------
    chips : ChipFeatures
        From :func:`chip_features`.
    labeller : callable
        :class:`Communities`, :class:`Reference` or :class:`Classifier`.
    refine : bool
        Boundary refinement when painting.
    reference_labels : (H, W) array, optional
        Previous labelling of the same image: IDs are matched to it (stable colours).
    table : bool
        Compute the per-community table.
    """
    progress = as_progress(progress)
    out = labeller(chips, progress)
    t = time.perf_counter()
    grid, img = chips.grid, chips.image
    labels = paint_labels(out.labels, grid, image=img, refine=refine)
    chip_labels = out.labels
    if reference_labels is not None:
        labels, chip_labels = _match_reference(labels, chip_labels, reference_labels)
    rows = community_table(labels, chip_labels, img, out.prepared) if table else []
    timings = {**chips.timings, **out.timings, "paint": time.perf_counter() - t}
    timings["total"] = sum(timings.values())
    settings = {
        "chip": grid.chip,
        "stride": grid.stride,
        "chip_source": chips.chip_info.get("source", "user"),
        "border": grid.border,
        "features": chips.settings,
        **{k: v for k, v in out.settings.items() if k not in _GRID_KEYS},
        "clahe": chips.clahe,
        "refine": bool(refine),
        "channels": int(img.shape[-1]),
    }
    if chips.chip_info.get("source") == "auto":
        settings["chip_auto"] = {
            k: v for k, v in chips.chip_info.items() if k not in ("chip", "stride", "source")
        }
    prov = _provenance(chips.inputs)
    prov["workflow"] = out.workflow
    return ClusterResult(
        labels.astype(np.int32),
        chip_labels,
        grid,
        img,
        chips.features,
        out.prepared,
        rows,
        timings,
        settings,
        out.n_detected,
        chips.pixel_size,
        chips.unit,
        prov,
        out.transform,
    )


def segment_by_communities(
    images,
    params: ClusterParams | None = None,
    progress: Progress | None = None,
    *,
    reference_labels: np.ndarray | None = None,
    feature_options: dict | None = None,
    unit: str = "Å",
    **values: Any,
) -> ClusterResult:
    """Unsupervised segmentation of a micrograph by communities of similar chips.

    :func:`chip_features` then :func:`label_chips` with the :class:`Communities`
    labeller.

    Parameters
    ----------
    images : path, array, or sequence of them
        One image, or several co-registered images used as channels.
    params : ClusterParams, optional
        The validated parameters (see :class:`ClusterParams`: ``chip``,
        ``stride``, ``features``, ``weights``, ``merge_to``, ``pixel_size``,
        ``feature_weights``, ``clahe``, ``k``, ``resolution``, ``seed``,
        ``method``, ``spatial_weight``, ``pca``, ``border``, ``refine``).
    progress : Progress, optional
        Progress and cancellation (see :mod:`napari_interfaces.core.progress`).
    reference_labels : (H, W) array, optional
        Previous labelling of the same image: IDs are matched to it (stable colours).
    feature_options : dict, optional
        Extra extractor settings (``batch``, ``device``, ``input_size`` ...).
    unit : str
        Unit of ``pixel_size`` (``"Å"`` or ``"nm"``).
    **values
        Parameters as keywords (``chip=32``), applied over ``params``.
        ``features`` may also be an extractor settings dict (``name`` +
        options); ``feature_weights`` a ``{group: weight}`` dict.

    Notes
    -----
    Feature weighting (``feature_weights``): each group of the extractor's
    features (texture, intensity) is first balanced so that neither
    dominates by its number of columns, and a constant "lift" column keeps
    regions of mid-range features apart (:class:`.graph.FeatureTransform`).
    ``"auto"`` (default): weights from a first clustering with equal weights
    (:func:`.features.auto_group_weights`); ``"equal"``: 1 each;
    ``"texture=1,intensity=0.5"``: as given; None (``"off"``): columns
    standardized one by one, no groups. The weighting used is reported in
    ``settings["feature_weighting"]``.

    Returns
    -------
    ClusterResult

    Raises
    ------
    ParameterError
        A parameter out of range (named by its field), or a chip larger than the image.
    InputError
        Unreadable, constant or NaN images; a bad weights file.
    """
    features = values.get("features", params.features if params is not None else "fft")
    if isinstance(features, dict):  # extractor settings: name + options
        values["features"] = str(features.get("name", "")).lower()
    if isinstance(values.get("feature_weights"), dict):
        values["feature_weights"] = _weights_text(values["feature_weights"])
    p = ClusterParams.of(params, **values)
    chips = chip_features(
        images,
        features if isinstance(features, dict) else p.features,
        chip=p.chip,
        stride=p.stride,
        border=p.border,
        clahe=p.clahe,
        weights=p.weights,
        feature_options=feature_options,
        pixel_size=p.pixel_size,
        unit=unit,
        progress=progress,
    )
    return label_chips(
        chips,
        Communities(p),
        refine=p.refine,
        reference_labels=reference_labels,
        progress=progress,
    )


def fit_transform(extractor, feats, n_channels: int, params: ClusterParams):
    """The :class:`.graph.FeatureTransform` for ``extractor``'s features.

    ``params.feature_weights``: see :func:`segment_by_communities`; ``pca``,
    ``k``, ``seed`` and ``merge_to`` are used too.
    """
    pca, feature_weights = params.pca, params.group_weights
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
            feats, groups, n_regions=params.merge_to, k=params.k, seed=params.seed, pca=pca
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
