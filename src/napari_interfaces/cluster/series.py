"""Consistent labels across a series: communities of one image applied to the next ones.

The communities found on a reference image (:func:`.pipeline.segment_by_communities`)
are kept as centroids in the reference's feature space (the fitted
:class:`.graph.FeatureTransform`: standardization, group weighting, PCA).
Every chip of a new image is cut on the same chip grid, described by the
same extractor, mapped into that space and given the label of the nearest
centroid (cosine distance), so the same kind of region gets the same label
and colour in every image of a series or folder.

Chips farther from every centroid than that community's own spread
(``novelty`` x the 99th percentile of its reference chips' distances) are
*new*: when there are enough of them they are grouped into communities of
their own (kNN graph + Louvain, as for the reference) with the next free
IDs, and with ``learn_new`` those are remembered for the following images.

:func:`label_folder` applies a reference to every image of a folder and
:func:`watch_folder` does it for images as they appear (complete files only:
a file is taken once its size and modification time stay the same between
two polls).

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.cluster.synthetic import texture_mosaic
>>> from napari_interfaces.cluster.pipeline import segment_by_communities
>>> from napari_interfaces.cluster.series import SeriesReference
>>> img, truth = texture_mosaic((384, 384), n_classes=3, seed=1)
>>> ref = segment_by_communities(img[:256, :256], chip=32, stride=16, merge_to=3)
>>> series = SeriesReference.from_result(ref)
>>> nxt = series.label(img[128:, 128:])
>>> shared_ref, shared_new = ref.labels[128:, 128:], nxt.labels[:128, :128]
>>> bool(np.mean(shared_ref == shared_new) > 0.9)
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.params import positive
from ..core.progress import Progress, as_progress
from ..io.folders import list_images, watch_folder
from ..io.micrograph import MICROGRAPH_SUFFIXES
from .graph import FeatureTransform, knn_graph
from .pairfile import check_settings, load_pair, pair_paths, save_pair
from .pipeline import ChipSetup, Reference, label_chips

__all__ = [
    "IMAGE_SUFFIXES",
    "SeriesReference",
    "segment_series",
    "label_folder",
    "list_images",
    "watch_folder",
]

FORMAT = "napari-interfaces/cluster-series"
VERSION = 1
IMAGE_SUFFIXES = MICROGRAPH_SUFFIXES  # the one list (io/micrograph.py)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


@dataclass
class SeriesReference:
    """Community centroids of a reference image and everything needed to label others.

    Attributes
    ----------
    extractor : dict
        Extractor settings (``name`` + options, weights sha256).
    chip, stride : int
        The reference's chip grid (pixels); new images use the same.
    transform : FeatureTransform
        Raw chip features -> the reference's unit feature space.
    centroids : (K, P) float32
        Unit mean feature of every community.
    ids : (K,) int
        Label of every centroid.
    radius : (K,) float
        Cosine distance beyond which a chip is not of that community.
    settings : dict
        The reference run's settings (graph settings reused for new communities).
    source : dict
        The reference run's provenance.
    """

    extractor: dict
    chip: int
    stride: int
    transform: FeatureTransform
    centroids: np.ndarray
    ids: np.ndarray
    radius: np.ndarray
    border: str = "shift"
    clahe: bool = False
    refine: bool = False
    settings: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    learned: list = field(default_factory=list)
    novelty: float = 2.0

    # ------------------------------------------------------------ building
    @classmethod
    def from_result(cls, result, novelty: float = 2.0) -> SeriesReference:
        """Centroids of the communities of a :class:`.pipeline.ClusterResult`.

        Parameters
        ----------
        novelty : float
            A chip farther than ``novelty`` x the 99th-percentile distance of a
            community's own chips from every centroid counts as a new region.
        """
        novelty = positive("novelty", novelty)
        if result.transform is None:
            raise InputError("the result has no fitted feature transform (rerun it)")
        lab = np.asarray(result.chip_labels, np.int64)
        x = np.asarray(result.prepared, np.float32)
        ids = np.unique(lab[lab > 0])
        if ids.size == 0:
            raise InputError("the reference result has no communities")
        cents, radii = [], []
        for i in ids:
            members = x[lab == i]
            c = _unit_rows(members.mean(0, keepdims=True))[0]
            d = 1.0 - members @ c
            cents.append(c)
            radii.append(novelty * max(float(np.quantile(d, 0.99)), 0.02))
        s = result.settings
        return cls(
            **ChipSetup.from_result(result).fields(),
            transform=result.transform,
            centroids=np.asarray(cents, np.float32),
            ids=ids.astype(np.int64),
            radius=np.asarray(radii, np.float64),
            refine=bool(s.get("refine", False)),
            settings=dict(s),
            source=dict(result.provenance),
            novelty=float(novelty),
        )

    @property
    def n_communities(self) -> int:
        return int(self.ids.size)

    # ------------------------------------------------------------ labelling
    def assign(self, prepared: np.ndarray, learn_new: bool = True) -> tuple[np.ndarray, list[int]]:
        """Labels of chips already in the reference space; returns ``(labels, new ids)``."""
        x = np.asarray(prepared, np.float32)
        dist = 1.0 - x @ self.centroids.T  # (N, K) cosine distance
        near = dist.argmin(1)
        lab = self.ids[near].copy()
        novel = dist[np.arange(len(x)), near] > self.radius[near]
        new_ids: list[int] = []
        min_new = max(8, int(0.02 * len(x)))
        if novel.sum() >= min_new:
            idx = np.nonzero(novel)[0]
            sub = knn_graph(x[idx], k=min(int(self.settings.get("k", 10)), len(idx) - 1),
                            prepared=True)  # fmt: skip
            from .communities import detect_communities

            comm = detect_communities(
                sub,
                method=self.settings.get("method", "louvain"),
                resolution=float(self.settings.get("resolution", 1.0)),
                seed=int(self.settings.get("seed", 0)),
            )
            comm = self._merge_new(comm, x[idx])
            nxt = int(self.ids.max()) + 1
            for c in np.unique(comm):
                members = idx[comm == c]
                if len(members) < min_new:
                    continue
                lab[members] = nxt
                new_ids.append(nxt)
                if learn_new:
                    cen = _unit_rows(x[members].mean(0, keepdims=True))
                    d = 1.0 - x[members] @ cen[0]
                    r = self.novelty * max(float(np.quantile(d, 0.99)), 0.02)
                    self.centroids = np.concatenate([self.centroids, cen.astype(np.float32)])
                    self.ids = np.append(self.ids, nxt)
                    self.radius = np.append(self.radius, r)
                    self.learned.append(nxt)
                nxt += 1
        return lab, new_ids

    def _merge_new(self, comm: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Join new communities closer to each other than a known community's own spread.

        Louvain splits a new region into pieces; average-linkage on their
        centroids (cosine) merges pieces closer than the median radius of the
        reference's communities, so one new kind of region gets one new ID.
        """
        ids, comm = np.unique(comm, return_inverse=True)
        if len(ids) < 2:
            return comm
        from scipy.cluster.hierarchy import fcluster, linkage

        cents = _unit_rows(np.stack([x[comm == i].mean(0) for i in range(len(ids))]))
        thr = float(np.median(self.radius)) / max(self.novelty, 1e-9)
        z = linkage(cents.astype(np.float64), method="average", metric="cosine")
        group = fcluster(z, t=thr, criterion="distance") - 1
        return group[comm]

    def label(
        self,
        images,
        progress: Progress | None = None,
        *,
        learn_new: bool = True,
        pixel_size: float | None = None,
        unit: str = "Å",
    ):
        """Label new image(s) with the reference's communities.

        Parameters
        ----------
        images : path, array or sequence of them
            One image of the series (several = channels, as for the reference).
        learn_new : bool
            Remember new regions for the following images.
        pixel_size, unit : float, str
            Pixel size (default: from the file).

        Returns
        -------
        ClusterResult
            ``settings["series"]`` says which IDs are new.
        """
        chips = ChipSetup.of(self).features(
            images, owner="reference", pixel_size=pixel_size, unit=unit, progress=progress
        )
        return label_chips(chips, Reference(self, learn_new), refine=self.refine)

    # ------------------------------------------------------------ files
    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``<stem>.json`` (settings) and ``<stem>.npz`` (numbers), each atomically."""
        meta = {
            "format": FORMAT,
            "version": VERSION,
            **ChipSetup.of(self).to_meta(),
            "refine": self.refine,
            "settings": self.settings,
            "source": self.source,
            "novelty": self.novelty,
            "feature_weighting": self.transform.report,
        }
        arrays = {f"transform_{k}": v for k, v in self.transform.to_arrays().items()}
        arrays.update(centroids=self.centroids, ids=self.ids, radius=self.radius)
        return save_pair(path, meta, arrays, default=_json_default)

    @classmethod
    def load(cls, path: str | Path) -> SeriesReference:
        """Read a reference saved by :meth:`save` (never executes code: no pickle)."""
        meta, a = load_pair(path, FORMAT, "cluster series reference")
        js, npz = pair_paths(path)
        check_settings(js, meta, "cluster series reference")
        try:
            n_ref = np.shape(a["centroids"])[0] if np.ndim(a["centroids"]) == 2 else -1
            if n_ref < 1 or np.shape(a["ids"]) != (n_ref,) or np.shape(a["radius"]) != (n_ref,):
                raise InputError(
                    f"{npz}: centroids {np.shape(a['centroids'])}, ids {np.shape(a['ids'])} "
                    f"and radius {np.shape(a['radius'])} do not match; not a valid series reference"
                )
        except KeyError as exc:
            raise InputError(f"{npz}: not a valid series reference: no array {exc}") from None
        try:
            t = FeatureTransform.from_arrays(
                {k[len("transform_") :]: v for k, v in a.items() if k.startswith("transform_")},
                meta.get("feature_weighting"),
            )
            # a dry run of the stored transform: its arrays must agree with each
            # other and with the centroids (a tampered file fails here, not mid-series)
            if not 0 < t.n_features <= 1 << 20:
                raise ValueError(f"n_features {t.n_features}")
            probe = t(np.zeros((1, t.n_features), np.float32))
            if probe.shape[1] != np.shape(a["centroids"])[1]:
                raise ValueError(
                    f"the transform gives {probe.shape[1]} values per chip, the centroids "
                    f"have {np.shape(a['centroids'])[1]}"
                )
            return cls(
                **ChipSetup.from_meta(meta).fields(),
                transform=t,
                centroids=np.asarray(a["centroids"], np.float32),
                ids=np.asarray(a["ids"], np.int64),
                radius=np.asarray(a["radius"], np.float64),
                refine=bool(meta.get("refine", False)),
                settings=dict(meta.get("settings", {})),
                source=dict(meta.get("source", {})),
                novelty=float(meta.get("novelty", 2.0)),
            )
        except (KeyError, ValueError, TypeError, IndexError, OSError) as exc:
            if isinstance(exc, InputError):
                raise
            reason = " ".join(str(exc).split())[:200]
            raise InputError(f"{npz}: not a valid series reference: {reason}") from None


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def segment_series(
    reference,
    others=(),
    progress: Progress | None = None,
    *,
    params=None,
    pixel_sizes=None,
    names=None,
    learn_new: bool = True,
    **kwargs,
) -> list:
    """Communities of ``reference`` and the same labels on every image of ``others``.

    The workflow behind the dock's "apply to all open images".

    Parameters
    ----------
    reference : path, array or sequence of them
        The reference image (several = channels), as for
        :func:`.pipeline.segment_by_communities`.
    others : sequence
        Further images of the series (each like ``reference``).
    pixel_sizes : sequence of float or None, optional
        Pixel size of ``reference`` then of each of ``others`` (in ``unit``).
    params : ClusterParams, optional
        The reference's parameters (see :func:`.pipeline.segment_by_communities`).
    names : sequence of str, optional
        Names of ``reference`` then of each of ``others``, for error messages.
    **kwargs
        Passed to :func:`.pipeline.segment_by_communities` for the reference.

    Returns
    -------
    list of ClusterResult
        The reference's result first, then one per image of ``others``.
    """
    from .pipeline import segment_by_communities

    progress = as_progress(progress)
    others = list(others)
    sizes = list(pixel_sizes) if pixel_sizes is not None else [None] * (len(others) + 1)
    if len(sizes) != len(others) + 1:
        raise InputError(f"{len(sizes)} pixel sizes for {len(others) + 1} images")
    unit = kwargs.get("unit", "Å")
    first = segment_by_communities(
        reference, params, progress=progress, pixel_size=sizes[0], **kwargs
    )
    out = [first]
    if others:
        series = SeriesReference.from_result(first)
        progress.start(len(others), "labelling the other images")
        names = list(names) if names is not None else [f"image {i + 1}" for i in range(len(sizes))]
        for img, ps, name in zip(others, sizes[1:], names[1:]):
            try:
                out.append(series.label(img, learn_new=learn_new, pixel_size=ps, unit=unit))
            except InputError as exc:
                raise InputError(f"{name}: {exc}") from None
            progress.advance()
    return out


# ------------------------------------------------------------ folders
def label_folder(
    reference: SeriesReference,
    files: list[Path],
    on_result: Callable[[Path, Any], None],
    progress: Progress | None = None,
    pixel_size: float | None = None,
) -> list[Path]:
    """Label ``files`` in order with ``reference``; ``on_result(path, result)`` writes each.

    ``pixel_size`` (Å) overrides the files' own.
    """
    progress = as_progress(progress)
    progress.start(len(files), "labelling the series")
    done = []
    for f in files:
        on_result(f, reference.label(f, pixel_size=pixel_size))
        done.append(f)
        progress.advance()
    return done
