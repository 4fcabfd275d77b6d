"""Composition slices -> images -> HED edge probability -> one 3D edge volume.

As in Madireddy et al. (Sci. Rep. 2019): the voxelized specimen is cut into
2D slices along an axis; each slice becomes an image whose colour channels
are chosen elements' compositions, each normalized to [0, 1] by its 1st and
99th percentile in the specimen (one element: grey; two: R, G and their mean
in B; three: RGB). HED gives an edge probability per slice; the slices stack
back into a volume. Slicing along one axis misses interfaces parallel to the
slices (a slice inside a layer is uniform), so the default combines the three
axes by taking, per voxel, the maximum over the axes: an interface is seen
in every slicing direction that is not its normal.

Outside the specimen, pixels are filled with the nearest specimen value so
the specimen's outer surface does not look like an edge. Slices are
upsampled (``zoom``) before HED so its finest side output resolves voxel
scale features, and the result is averaged back onto the voxel grid.
"""

from __future__ import annotations

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = ["composition_images", "edge_probability", "normalize_channels", "slice_images"]


def normalize_channels(
    channels: np.ndarray, mask: np.ndarray, pct=(1.0, 99.0), min_span: float = 0.15
) -> np.ndarray:
    """Each channel to [0, 1] by its percentiles inside ``mask``; outside filled
    with the nearest inside value.

    The span is at least ``min_span`` (atomic fraction) around the channel's
    middle, so the counting noise of a homogeneous specimen is not stretched
    into full-contrast texture that an edge detector would pick up.
    """
    from scipy import ndimage

    out = np.empty(channels.shape, np.float32)
    for i, c in enumerate(channels):
        v = c[mask] if mask.any() else c.ravel()
        lo, hi = np.percentile(v, pct)
        if hi - lo < min_span:
            mid = 0.5 * (hi + lo)
            lo, hi = mid - min_span / 2, mid + min_span / 2
        out[i] = np.clip((c - lo) / (hi - lo), 0, 1)
    if mask.any() and not mask.all():
        idx = ndimage.distance_transform_edt(~mask, return_distances=False, return_indices=True)
        out = out[(slice(None), *idx)]
    return out


def composition_images(norm: np.ndarray) -> np.ndarray:
    """(C, ...) normalized channels -> (..., 3) RGB in [0, 1]."""
    c = norm.shape[0]
    if c == 1:
        rgb = [norm[0]] * 3
    elif c == 2:
        rgb = [norm[0], norm[1], 0.5 * (norm[0] + norm[1])]
    else:
        rgb = [norm[0], norm[1], norm[2]]
    return np.stack(rgb, axis=-1).astype(np.float32)


def slice_images(rgb: np.ndarray, axis: int) -> np.ndarray:
    """(Z, Y, X, 3) volume -> (N, H, W, 3) slices along ``axis`` (0, 1, 2)."""
    return np.ascontiguousarray(np.moveaxis(rgb, axis, 0))


def _zoom_stack(imgs: np.ndarray, zoom: int) -> np.ndarray:
    if zoom == 1:
        return imgs
    import torch
    from torch.nn import functional as F

    t = torch.from_numpy(imgs).permute(0, 3, 1, 2)
    t = F.interpolate(t, scale_factor=zoom, mode="bilinear", align_corners=False)
    return t.permute(0, 2, 3, 1).numpy()


def _unzoom(e: np.ndarray, zoom: int) -> np.ndarray:
    if zoom == 1:
        return e
    n, h, w = e.shape
    return e.reshape(n, h // zoom, zoom, w // zoom, zoom).mean(axis=(2, 4))


def edge_probability(
    channels: np.ndarray,
    mask: np.ndarray,
    axes: str = "zyx",
    weights: str = "auto",
    model=None,
    zoom: int = 2,
    batch_size: int = 32,
    combine: str = "max",
    precision: str = "fp32",
    progress: Progress | None = None,
) -> np.ndarray:
    """3D edge probability (Z, Y, X) in [0, 1] from composition channels (C, Z, Y, X).

    Parameters
    ----------
    axes : str
        Any of ``"z"``, ``"y"``, ``"x"``: slicing directions to combine.
    weights : str
        HED weights (see :func:`napari_interfaces.nets.hed_weights.load_hed`).
    model : HED, optional
        A loaded model (overrides ``weights``).
    zoom : int
        Upsampling of each slice before HED.
    combine : ``"max"`` or ``"mean"`` over the axes.
    batch_size : int
        Slices per forward pass.
    precision : ``"fp32"`` or ``"bf16"`` (see :func:`~napari_interfaces.nets.hed.predict_edges`).
    """
    import torch

    from ..nets.hed import predict_edges
    from ..nets.hed_weights import load_hed

    progress = as_progress(progress)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    axes = axes.lower()
    if not axes or any(a not in "zyx" for a in axes):
        raise ValueError(f"axes must be made of z, y, x; got {axes!r}")
    if model is None:
        model = load_hed(weights)
    norm = normalize_channels(channels, mask)
    rgb = composition_images(norm)
    shape = mask.shape
    n_batches = sum(-(-shape["zyx".index(a)] // batch_size) for a in axes)
    progress.start(n_batches, f"HED edges ({''.join(axes)})")
    result = None
    for a in axes:
        ax = "zyx".index(a)
        imgs = _zoom_stack(slice_images(rgb, ax), zoom)
        e = predict_edges(
            model, imgs, batch_size=batch_size, rgb=True, progress=progress, precision=precision
        )
        e = np.moveaxis(_unzoom(e, zoom), 0, ax)
        if result is None:
            result = e
        elif combine == "max":
            result = np.maximum(result, e)
        else:
            result = result + e
    if combine != "max":
        result = result / len(axes)
    result = result.astype(np.float32)
    result[~mask] = 0
    return result
