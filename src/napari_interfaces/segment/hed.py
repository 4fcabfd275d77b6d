"""HED moved to :mod:`napari_interfaces.nets.hed`; this path re-exports it."""

from __future__ import annotations

from ..nets.hed import BGR_MEAN, HED, VGG_BLOCKS, hed_loss, predict_edges, preprocess

__all__ = ["BGR_MEAN", "HED", "VGG_BLOCKS", "hed_loss", "predict_edges", "preprocess"]
