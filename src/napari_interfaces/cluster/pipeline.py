"""High-level chip-community segmentation: images in, Labels + table out.

Stages (each timed in ``result.timings``): ``load`` (normalize, stack
channels, optional CLAHE), ``features`` (chip descriptors), ``graph``
(cosine kNN + optional spatial edges), ``communities`` (Louvain, optional
merge to K, deterministic IDs), ``paint`` (votes -> Labels, table).

Examples
--------
>>> from napari_interfaces.cluster.synthetic import texture_mosaic
>>> from napari_interfaces.cluster.pipeline import segment_by_communities
>>> img, truth = texture_mosaic((256, 256), n_classes=3, seed=1)
>>> res = segment_by_communities(img, chip=32, stride=16, merge_to=3)
>>> res.labels.shape, res.n_communities
((256, 256), 3)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress
from .chips import ChipGrid, apply_clahe, make_grid
from .communities import detect_communities, match_mapping, order_labels
from .communities import merge_to as merge_to_fn
from .features import get_extractor
from .graph import knn_graph, prepare_features
from .images import prepare_images
from .paint import community_table, paint_labels

__all__ = ["ClusterResult", "segment_by_communities"]


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
    image : (H, W, C) float32
        The normalized input the chips were cut from.
    features : (N, D) float32
        Raw chip features; ``prepared`` is the standardized/PCA/unit version.
    table : list of dict
        Per-community statistics (see :func:`.paint.community_table`).
    timings : dict
        Seconds per stage.
    settings : dict
        Everything needed to rerun (extractor settings incl. weights sha256).
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

    @property
    def n_communities(self) -> int:
        return int(self.chip_labels.max(initial=0))

    def summary(self) -> dict:
        """JSON-ready dict: settings, timings, table."""
        return {
            "n_communities": self.n_communities,
            "n_detected": self.n_detected,
            "shape": list(self.grid.shape),
            "n_chips": self.grid.n_chips,
            "settings": self.settings,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "communities": self.table,
        }


def segment_by_communities(
    images,
    chip: int = 64,
    stride: int | None = 32,
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
) -> ClusterResult:
    """Unsupervised segmentation of a micrograph by communities of similar chips.

    Parameters
    ----------
    images : path, array, or sequence of them
        One image, or several co-registered images used as channels.
    chip, stride : int
        Chip side and step in pixels (``stride < chip`` overlaps chips).
    features : str or dict
        ``fft`` | ``filterbank`` | ``resnet50`` | ``learned`` or a settings
        dict with ``name``.
    k : int
        Neighbours in the cosine kNN graph.
    resolution : float
        Louvain resolution (higher: more communities).
    merge_to : int, optional
        Merge communities down to this many (Ward on mean features).
    seed : int
        Seed of the community detection.
    weights : str, optional
        Weights file for ``resnet50`` / ``learned``.
    clahe : bool
        Apply CLAHE to every channel before chipping.
    spatial_weight : float
        Weight of edges between 4-adjacent chips (0 = none).
    method : str
        ``louvain`` (default), ``networkx`` or ``leiden`` (optional extra).
    pca : int or None
        Components kept for the graph.
    refine : bool
        Boundary refinement when painting.
    reference_labels : (H, W) array, optional
        Previous labelling: IDs are matched to it (stable colours).
    feature_options : dict, optional
        Extra extractor settings (``batch``, ``device``, ``input_size`` ...).
    """
    progress = as_progress(progress)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    img = prepare_images(images)
    if clahe:
        img = apply_clahe(img)
    grid: ChipGrid = make_grid(img.shape, chip, stride, border)
    timings["load"] = time.perf_counter() - t0

    t = time.perf_counter()
    opts = dict(feature_options or {})
    if weights:
        opts["weights"] = weights
    extractor = get_extractor(features, **opts)
    feats = extractor(img, grid, progress)
    if not np.all(np.isfinite(feats)):
        raise ValueError("feature extraction produced NaN/inf (is the image constant in places?)")
    timings["features"] = time.perf_counter() - t

    progress.start(3, "similarity graph")
    t = time.perf_counter()
    prepared = prepare_features(feats, pca=pca)
    adj = knn_graph(prepared, k=k, prepared=True, grid=grid, spatial_weight=spatial_weight)
    timings["graph"] = time.perf_counter() - t
    progress.advance(description="communities")

    t = time.perf_counter()
    lab = detect_communities(adj, method=method, resolution=resolution, seed=seed)
    n_detected = int(lab.max()) + 1
    if merge_to:
        lab = merge_to_fn(lab, prepared, merge_to)
    chip_mean = feats_intensity(img, grid)
    chip_labels = order_labels(lab, chip_mean)
    timings["communities"] = time.perf_counter() - t
    progress.advance(description="painting")

    t = time.perf_counter()
    labels = paint_labels(chip_labels, grid, image=img, refine=refine)
    if reference_labels is not None:
        ref = np.asarray(reference_labels)
        if ref.shape != labels.shape:
            raise ValueError(f"reference labels {ref.shape} do not match the image {labels.shape}")
        mapping = match_mapping(labels, ref)
        lut = np.arange(int(labels.max()) + 1)
        for a, b in mapping.items():
            lut[a] = b
        labels = lut[labels].astype(np.int32)
        chip_labels = lut[chip_labels]
    table = community_table(labels, chip_labels, img, prepared)
    timings["paint"] = time.perf_counter() - t
    progress.advance()
    timings["total"] = time.perf_counter() - t0

    settings = {
        "chip": grid.chip,
        "stride": grid.stride,
        "border": border,
        "features": extractor.settings(),
        "k": int(k),
        "resolution": float(resolution),
        "merge_to": None if not merge_to else int(merge_to),
        "seed": int(seed),
        "method": method,
        "pca": pca,
        "clahe": bool(clahe),
        "spatial_weight": float(spatial_weight),
        "refine": bool(refine),
        "channels": int(img.shape[-1]),
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
    )


def feats_intensity(img: np.ndarray, grid: ChipGrid) -> np.ndarray:
    """Mean intensity of every chip (channel mean), for ordering community IDs."""
    from .features import _box_stats

    x = img.mean(-1) if img.ndim == 3 else img
    return _box_stats(np.ascontiguousarray(x, np.float32), grid.ys, grid.xs, grid.chip)[0]
