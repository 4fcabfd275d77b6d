"""Paint to segment: a pixel classifier trained from a few brush strokes.

Multi-scale per-pixel features (:mod:`.features`), a random forest trained
on the painted pixels (:mod:`.model`, saved without pickle), one workflow
for the CLI, the dock and the chip-communities corrections
(:mod:`.workflow`), feature-space cluster smoothing of the forest's
probabilities (:mod:`.clusters`), an opt-in random walker that spreads the strokes inside
edge-bounded regions (:mod:`.propagate`), an opt-in small neural head that also
learns from the unpainted pixels (:mod:`.mlp`), and a seeded simulated user
(:mod:`.strokes`) for the benchmark and tests. No Qt, no napari; torch and scikit-learn are imported
lazily.
"""

from __future__ import annotations

import importlib

__all__ = [
    "FeatureCache",
    "FeatureSettings",
    "PixelClassifier",
    "ClassifyResult",
    "apply_classifier",
    "classify_image",
    "pixel_features",
    "train_classifier",
]

_WHERE = {
    "FeatureCache": "features",
    "FeatureSettings": "features",
    "pixel_features": "features",
    "PixelClassifier": "model",
    "ClassifyResult": "workflow",
    "apply_classifier": "workflow",
    "classify_image": "workflow",
    "train_classifier": "workflow",
}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
