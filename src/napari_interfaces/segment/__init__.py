"""HRTEM segmentation engine (no Qt, no napari): U-Net, particles, uncertainty.

The public API is exported lazily (scikit-image style): ``from
napari_interfaces.segment import segment_image`` imports only
:mod:`.inference` (torch is imported when a model runs), and ``import
napari_interfaces.segment`` imports nothing heavy. (The functions
:func:`.train.train` and :func:`.finetune.finetune` are not re-exported:
their names are their modules'.)

=========================  =================================================
``segment_image``          micrograph -> :class:`SegmentationResult` (:mod:`.inference`)
``SegmentParams``          its settings, one validated spec (:mod:`.inference`)
``SegmentationResult``     labels, probabilities, pixel size used + source, grid,
                           uncertainty, particles (:mod:`.inference`)
``evaluate_store``         F1/IoU of a model on a database (:mod:`.inference`)
``estimate_pixel_size``    pixel size from lattice fringes (:mod:`.scale`)
``measure_particles``      split touching particles, particle table (:mod:`.particles`)
``ParticleTable``          one row per particle, CSV, napari features (:mod:`.particles`)
``match_instances``        instance matching at an IoU (:mod:`.particles`)
``write_size_histogram``   size histogram PNG (:mod:`.particles`)
``correction_gain``        usefulness of the uncertainty ranking (:mod:`.uncertainty`)
``load_model``             a model by name or path, checksum verified (:mod:`.models`)
``list_models``            the default and the user's models (:mod:`.models`)
``save_model``             .pt + .json written together (:mod:`.models`)
``TrainConfig``            training settings, a spec (:mod:`.train`)
``FinetuneParams``         fine-tuning settings (:mod:`.finetune`)
=========================  =================================================
"""

from __future__ import annotations

from ..core.lazy import attach

_EXPORTS = {
    "segment_image": "inference",
    "SegmentationResult": "inference",
    "SegmentParams": "inference",
    "evaluate_store": "inference",
    "MULTISCALE": "inference",
    "estimate_pixel_size": "scale",
    "PixelSizeEstimate": "scale",
    "measure_particles": "particles",
    "split_particles": "particles",
    "ParticleTable": "particles",
    "match_instances": "particles",
    "write_size_histogram": "particles",
    "correction_gain": "uncertainty",
    "least_certain": "uncertainty",
    "load_model": "models",
    "list_models": "models",
    "save_model": "models",
    "LoadedModel": "models",
    "TrainConfig": "train",
    "FinetuneParams": "finetune",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
