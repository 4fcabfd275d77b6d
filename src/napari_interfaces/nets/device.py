"""The one torch-device resolver of the package.

Every network (the U-Net, HED, the chip encoders) and the torch multislice
backend pick their device here, so ``"auto"``, the ``torch_device`` setting
(see :mod:`napari_interfaces.core.config`) and a missing GPU mean the same
everywhere. torch is imported when a device is resolved, never on import.
"""

from __future__ import annotations

from ..core.errors import InputError

__all__ = ["resolve_device"]

_USAGE = "use auto, cpu, cuda or cuda:N"


def resolve_device(device: str | None = "auto"):
    """``torch.device`` from ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    ``None``, ``""`` and ``"auto"`` read the ``torch_device`` setting; when
    that is ``"auto"`` too, CUDA is picked where available, else the CPU.

    Raises
    ------
    InputError
        A device torch does not know, or a CUDA device that is not there.
    """
    import torch

    if device in (None, "", "auto"):
        from ..core import config

        device = config.get("torch_device", "auto") or "auto"
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"bad torch device {device!r}: {_USAGE}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"torch device {device!r} requested but there is no CUDA device "
                "(torch.cuda.is_available() is False)"
            )
        n = torch.cuda.device_count()
        if (dev.index or 0) >= n:
            raise InputError(
                f"torch device {device!r}: cuda:{dev.index} does not exist ({n} found)"
            )
    return dev
