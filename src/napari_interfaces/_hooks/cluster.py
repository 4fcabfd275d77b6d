"""Sample data for the chip-communities pipeline (synthetic, made locally)."""

from __future__ import annotations


def sample_texture_mosaic():
    """A 512 x 512 mosaic of four textures with its ground-truth labels (seed 0)."""
    from ..cluster.synthetic import texture_mosaic

    img, truth = texture_mosaic((512, 512), n_regions=12, n_classes=4, seed=0)
    return [
        (img, {"name": "texture mosaic"}, "image"),
        (truth, {"name": "texture mosaic truth", "visible": False}, "labels"),
    ]


def sample_order_disorder():
    """A 512 x 512 crystalline / damaged / amorphous lattice micrograph with truth (seed 0)."""
    from ..cluster.synthetic import order_disorder_micrograph

    img, truth = order_disorder_micrograph((512, 512), n_regions=9, seed=0)
    return [
        (img, {"name": "order/disorder micrograph"}, "image"),
        (truth, {"name": "order/disorder truth", "visible": False}, "labels"),
    ]
