"""Tiled U-Net inference on micrographs of any size.

:func:`segment_image` takes a 2D image (any size), rescales it to the
model's training pixel size when the image's pixel size is known (from the
file's metadata or given by the user), normalizes it per image exactly as in
training (:func:`~.train.normalize_image`), runs the network on overlapping
tiles, blends the tiles' class probabilities with a smooth window (no seams)
and maps the result back to the input's pixel grid.

On CPUs with bfloat16 support (AVX-512 BF16 / AMX) the convolutions run in
bfloat16 by default (``precision="auto"``), in channels-last layout: about
3× faster than float32, with the same labels on > 99.9 % of the pixels.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.segment.inference import segment_image
>>> from napari_interfaces.segment.models import LoadedModel
>>> from napari_interfaces.segment.unet import UNet, UNetConfig
>>> model = LoadedModel(UNet(UNetConfig(width=4)).eval(), {"architecture": {"n_classes": 2}})
>>> segment_image(np.random.default_rng(0).random((70, 90)), model, tile=64).shape
(70, 90)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = [
    "SegmentationResult",
    "blend_window",
    "evaluate_store",
    "rescale_factor",
    "segment_image",
    "tile_starts",
]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of side ``tile`` covering ``[0, size)`` with ``overlap``.

    The last tile ends exactly at ``size`` (when ``size >= tile``).

    >>> tile_starts(1000, 512, 64)
    [0, 448, 488]
    """
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return sorted(set(starts))


def blend_window(tile: int, overlap: int) -> np.ndarray:
    """2D blending weights: 1 inside, a raised-cosine ramp over ``overlap`` px at the borders.

    Never zero, so every pixel gets weight even at the image edges.
    """
    ramp = np.ones(tile, np.float32)
    m = min(overlap, tile // 2)
    if m > 0:
        x = (np.arange(m, dtype=np.float32) + 0.5) / m
        ramp[:m] = 0.5 - 0.5 * np.cos(np.pi * x)
        ramp[-m:] = ramp[:m][::-1]
    ramp = np.maximum(ramp, 1e-3)
    return np.outer(ramp, ramp)


def rescale_factor(image_pixel_size: float | None, model_pixel_size: float | None) -> float:
    """Zoom factor taking an image to the model's pixel size (1 when either is unknown)."""
    if not image_pixel_size or not model_pixel_size:
        return 1.0
    f = float(image_pixel_size) / float(model_pixel_size)
    return 1.0 if abs(f - 1.0) < 1e-3 else f


def _to_gray(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32).mean(axis=-1)
    if a.ndim != 2:
        raise ValueError(f"expected a 2D image (or RGB), got shape {a.shape}")
    return a.astype(np.float32, copy=False)


def _bf16_supported() -> bool:
    try:
        import torch

        return bool(
            torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except Exception:  # noqa: BLE001
        return False


@dataclass
class SegmentationResult:
    """Labels plus what was done to get them."""

    labels: np.ndarray
    probabilities: np.ndarray | None
    scale: float
    model_pixel_size: float | None
    image_pixel_size: float | None
    seconds: float
    precision: str


def segment_image(
    image: np.ndarray,
    model,
    pixel_size: float | None = None,
    tile: int = 1024,
    overlap: int = 64,
    batch_size: int = 1,
    device: str | None = None,
    precision: str = "auto",
    return_probabilities: bool = False,
    progress: Progress | None = None,
    full_result: bool = False,
):
    """Segment a 2D micrograph of any size with tiled, blended inference.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array
    model : LoadedModel, model name or path
        See :func:`~.models.load_model` (``"default"`` for the shipped model).
    pixel_size : float, optional
        The image's pixel size in Å. When given and the model records its
        training pixel size, the image is resampled to it first.
    tile, overlap : int
        Tile side and overlap (px at the model's pixel size); ``tile`` is
        rounded up to the network's multiple.
    batch_size : int
        Tiles per forward pass.
    device : str, optional
        torch device (default: the model's).
    precision : {"auto", "float32", "bfloat16"}
        ``auto``: bfloat16 on CPUs that support it, float32 otherwise.
    return_probabilities : bool
        Also return the ``(n_classes, H, W)`` float32 probabilities.
    progress : Progress, optional
        One step per tile.
    full_result : bool
        Return a :class:`SegmentationResult`.

    Returns
    -------
    labels : (H, W) uint8 (or ``(labels, probabilities)``, or a result)
    """
    import time

    import torch
    from scipy import ndimage

    from .models import LoadedModel, load_model
    from .train import normalize_image

    t0 = time.perf_counter()
    progress = as_progress(progress)
    if not isinstance(model, LoadedModel):
        model = load_model(model, device=device or "auto")
    net = model.net
    dev = torch.device(device) if device else next(net.parameters()).device
    net.to(dev).eval()
    img = _to_gray(image)
    h0, w0 = img.shape
    scale = rescale_factor(pixel_size, model.pixel_size)
    if scale != 1.0:
        shape = (max(1, round(h0 * scale)), max(1, round(w0 * scale)))
        img = ndimage.zoom(img, (shape[0] / h0, shape[1] / w0), order=1, prefilter=False)
    img = normalize_image(img, model.normalization)
    h, w = img.shape
    multiple = getattr(net, "multiple", 32)
    tile = int(math.ceil(min(tile, max(h, w)) / multiple) * multiple)
    overlap = min(int(overlap), tile // 4)
    # pad small images up to one tile
    ph, pw = max(0, tile - h), max(0, tile - w)
    if ph or pw:
        img = np.pad(img, ((0, ph), (0, pw)), mode="reflect" if (ph < h and pw < w) else "edge")
    H, W = img.shape
    ys, xs = tile_starts(H, tile, overlap), tile_starts(W, tile, overlap)
    window = blend_window(tile, overlap)
    n_classes = model.n_classes
    acc = np.zeros((n_classes, H, W), np.float32)
    wsum = np.zeros((H, W), np.float32)
    if precision == "auto":
        precision = "bfloat16" if (dev.type == "cpu" and _bf16_supported()) else "float32"
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be auto, float32 or bfloat16, got {precision!r}")
    use_bf16 = precision == "bfloat16"
    cl = dev.type == "cpu"
    if cl:
        net = net.to(memory_format=torch.channels_last)
    coords = [(y, x) for y in ys for x in xs]
    progress.start(len(coords), "segmenting")
    wt = torch.from_numpy(window)
    with torch.inference_mode():
        for b in range(0, len(coords), batch_size):
            chunk = coords[b : b + batch_size]
            batch = np.stack([img[y : y + tile, x : x + tile] for y, x in chunk])[:, None]
            xb = torch.from_numpy(batch).to(dev)
            if cl:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = net(xb)
            prob = torch.softmax(logits.float(), dim=1).cpu()
            prob = (prob * wt).numpy()
            for k, (y, x) in enumerate(chunk):
                acc[:, y : y + tile, x : x + tile] += prob[k]
                wsum[y : y + tile, x : x + tile] += window
            progress.advance(len(chunk))
    acc = acc[:, :h, :w]
    acc /= wsum[None, :h, :w]
    if (h, w) != (h0, w0):
        acc = np.stack([ndimage.zoom(a, (h0 / h, w0 / w), order=1, prefilter=False) for a in acc])[
            :, :h0, :w0
        ]
        if acc.shape[1:] != (h0, w0):  # zoom rounding
            acc = np.pad(
                acc, ((0, 0), (0, h0 - acc.shape[1]), (0, w0 - acc.shape[2])), mode="edge"
            )
    labels = acc.argmax(axis=0).astype(np.uint8)
    if full_result:
        return SegmentationResult(
            labels=labels,
            probabilities=acc if return_probabilities else None,
            scale=scale,
            model_pixel_size=model.pixel_size,
            image_pixel_size=pixel_size,
            seconds=time.perf_counter() - t0,
            precision=precision,
        )
    return (labels, acc) if return_probabilities else labels


def evaluate_store(
    model,
    store: str | Path,
    indices=None,
    progress: Progress | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """F1 and IoU of a model on a database store (pixel-wise, summed over samples).

    Each sample is segmented with :func:`segment_image` at the store's pixel
    size, exactly as a user's micrograph would be.

    Returns
    -------
    dict
        ``{"f1": ..., "iou": ..., "n": ..., "per_image_f1_mean": ...}``
    """
    from ..simulate.database import completed_indices, open_database
    from .metrics import ConfusionCounter, scores
    from .models import LoadedModel, load_model

    progress = as_progress(progress)
    if not isinstance(model, LoadedModel):
        model = load_model(model)
    g = open_database(store)
    pixel_size = g.attrs.get("pixel_size")
    idx = completed_indices(store) if indices is None else list(indices)
    if not idx:
        raise ValueError(f"{store}: no completed samples to evaluate")
    counter = ConfusionCounter(model.n_classes)
    per_image = []
    progress.start(len(idx), "evaluating")
    for i in idx:
        image = np.asarray(g["image"][i])
        truth = np.asarray(g["labels"][i])
        pred = segment_image(image, model, pixel_size=pixel_size, **kwargs)
        counter.update(pred, truth)
        per_image.append(scores(pred, truth, model.n_classes)["f1"])
        progress.advance()
    s = counter.scores()
    return {
        "f1": round(s["f1"], 4),
        "iou": round(s["iou"], 4),
        "n": len(idx),
        "per_image_f1_mean": round(float(np.mean(per_image)), 4),
        "per_image_f1_min": round(float(np.min(per_image)), 4),
    }
