"""Chip communities: unsupervised segmentation of micrographs (no Qt, no napari).

The image is cut into chips, every chip is described by a feature vector,
similar chips are linked in a cosine kNN graph and the graph's communities
are painted back as labels. One workflow, :func:`segment_by_communities`,
serves the napari dock, the ``napari-interfaces cluster`` command and
scripts; :class:`SeriesReference` applies its communities to further images
of a series with the same labels.

The public API is loaded lazily (scikit-image style): importing this package
costs nothing until a name is used.

Examples
--------
>>> from napari_interfaces import cluster
>>> img, truth = cluster.texture_mosaic((256, 256), n_classes=3, seed=1)
>>> res = cluster.segment_by_communities(img, chip=32, stride=16, merge_to=3)
>>> res.n_communities
3
"""

from __future__ import annotations

from ..core.lazy import attach

#: Public name -> submodule that defines it.
_EXPORTS = {
    # workflow
    "ClusterParams": "pipeline",
    "ClusterResult": "pipeline",
    "choose_chip": "pipeline",
    "segment_by_communities": "pipeline",
    # the composition: a chip featurizer, then a labeller strategy
    "chip_features": "pipeline",
    "label_chips": "pipeline",
    "Communities": "pipeline",
    "Reference": "pipeline",
    "Classifier": "pipeline",
    # series
    "SeriesReference": "series",
    "label_folder": "series",
    "watch_folder": "series",
    # stages
    "prepare_images": "images",
    "load_image": "images",
    "ChipGrid": "chips",
    "make_grid": "chips",
    "extract_chips": "chips",
    "get_extractor": "features",
    "FeatureTransform": "graph",
    "knn_graph": "graph",
    "prepare_features": "graph",
    "louvain": "communities",
    "detect_communities": "communities",
    "merge_to": "communities",
    "match_labels": "communities",
    "modularity": "communities",
    "paint_labels": "paint",
    "community_table": "paint",
    # corrections
    "CorrectionModel": "corrections",
    "learn_from_corrections": "corrections",
    "apply_model": "corrections",
    "apply_to_folder": "corrections",
    # synthetic test images
    "texture_mosaic": "synthetic",
    "order_disorder_micrograph": "synthetic",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
