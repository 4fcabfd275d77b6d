"""Loading, checking and normalizing micrographs for chip clustering.

Every image becomes a ``float32`` array scaled to about ``[0, 1]``; several
co-registered images of one specimen (e.g. HAADF + EDS maps) are stacked as
channels of one ``(H, W, C)`` array.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.cluster.images import prepare_images
>>> a = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
>>> x = prepare_images([a, a.T])
>>> x.shape, x.dtype
((64, 64, 2), dtype('float32'))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..core.errors import InputError

__all__ = ["load_image", "normalize", "prepare_images", "to_gray", "read_mask_rgba"]

ImageLike = "str | Path | np.ndarray"


def load_image(path: str | Path, as_gray: bool = True) -> np.ndarray:
    """Read a micrograph file (TIFF via tifffile, PNG/JPEG/... via scikit-image).

    Parameters
    ----------
    path : str or Path
        Image file; grayscale, RGB(A), 8- or 16-bit or float.
    as_gray : bool
        Convert RGB(A) to one luminance channel (alpha dropped). With
        ``False`` a colour image keeps its channels as ``(H, W, 3)``.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` or ``(H, W, C)`` in the file's dtype (before normalization).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file, or not a 2-D (optionally multi-channel) image.
    """
    from ..core.limits import check_regular_file
    from ..io.micrograph import MICROGRAPH_SUFFIXES, fill_non_finite, read_micrograph

    path = Path(path)
    check_regular_file(path)  # no FIFO, device or folder
    suffix = path.suffix.lower()
    if suffix in MICROGRAPH_SUFFIXES:
        # the one image reader: declared bytes checked before decoding, first
        # page only, non-finite pixels filled with a warning (or refused)
        data = read_micrograph(path).data
    else:
        try:
            from skimage import io

            data = io.imread(path)
        except Exception as exc:  # noqa: BLE001 - readers raise many kinds
            raise InputError(f"{path}: cannot read as an image: {_first(exc)}") from None
        data, _ = fill_non_finite(np.asarray(data), str(path))
    data = np.asarray(data)
    data = np.squeeze(data)
    if data.ndim == 3 and data.shape[0] in (3, 4) and data.shape[-1] not in (3, 4):
        data = np.moveaxis(data, 0, -1)  # planar RGB
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[-1] > 4):
        raise InputError(
            f"{path}: expected a 2-D grayscale or RGB(A) image, got shape {data.shape}"
        )
    if data.ndim == 3 and as_gray:
        data = to_gray(data)
    elif data.ndim == 3 and data.shape[-1] == 4:
        data = data[..., :3]
    return data


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R BT.709 weights) of an RGB(A) image, as ``float32``.

    A colour image whose channels are all equal (a gray image saved as RGB)
    returns its first channel exactly.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.float32)
    rgb = rgb[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0].astype(np.float32)
    w = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    return rgb.astype(np.float32) @ w


def normalize(
    image: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5), name: str = "image"
) -> np.ndarray:
    """Scale one channel to about ``[0, 1]`` by robust percentiles, as ``float32``.

    Non-finite pixels follow :func:`napari_interfaces.io.micrograph.fill_non_finite`
    (filled with the median and a warning; an image without a finite pixel
    is refused).

    Raises
    ------
    ValueError
        If the image has no finite pixel or is constant (nothing to segment).
    """
    from ..io.micrograph import fill_non_finite

    # the one non-finite rule of every image command (io.micrograph.fill_non_finite)
    x, _ = fill_non_finite(np.asarray(image, dtype=np.float32), name)
    x = np.asarray(x, dtype=np.float32)
    # percentiles on a subsample: exact enough and fast for 4096^2 images
    step = max(1, int(np.sqrt(x.size / 262144)))
    sample = x.ravel()[:: step * step]
    lo, hi = np.percentile(sample, percentiles)
    if not hi > lo:
        lo, hi = float(x.min()), float(x.max())
    if not hi > lo:
        raise InputError(f"{name}: the image is constant (all pixels {lo:g}); nothing to segment")
    out = np.subtract(x, np.float32(lo), dtype=np.float32)
    out *= np.float32(1.0 / (hi - lo))
    np.clip(out, -0.5, 1.5, out=out)
    return out


def prepare_images(
    images: str | Path | np.ndarray | Sequence,
    as_gray: bool = True,
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> np.ndarray:
    """Load (if paths), check, normalize and stack images as channels.

    Parameters
    ----------
    images : path, array or sequence of them
        One image, or several co-registered images of one specimen. A single
        ``(H, W, C)`` array with ``C <= 4`` is taken as channels.
    as_gray : bool
        Convert colour files to luminance (see :func:`load_image`).

    Returns
    -------
    numpy.ndarray
        ``(H, W, C)`` float32, each channel scaled to about ``[0, 1]``.

    Raises
    ------
    ValueError
        Mismatched channel shapes, NaN, constant images, no images.
    """
    if isinstance(images, (str, Path)) or (isinstance(images, np.ndarray)):
        images = [images]
    items = list(images)
    if not items:
        raise InputError("no images given")
    channels: list[np.ndarray] = []
    names: list[str] = []
    for i, item in enumerate(items):
        name = str(item) if isinstance(item, (str, Path)) else f"image {i}"
        arr = (
            load_image(item, as_gray=as_gray)
            if isinstance(item, (str, Path))
            else np.asarray(item)
        )
        if arr.ndim == 2:
            planes = [arr]
        elif arr.ndim == 3 and arr.shape[-1] <= 4:
            if as_gray and arr.shape[-1] in (3, 4):
                planes = [to_gray(arr)]
            else:
                planes = [arr[..., c] for c in range(arr.shape[-1])]
        else:
            raise InputError(
                f"{name}: expected a 2-D image or (H, W, C<=4), got shape {arr.shape}"
            )
        for p in planes:
            channels.append(p)
            names.append(name)
    shape = channels[0].shape
    for c, n in zip(channels, names):
        if c.shape != shape:
            raise InputError(
                f"channel shapes differ: {names[0]} is {shape[0]}x{shape[1]} but {n} is "
                f"{c.shape[0]}x{c.shape[1]}; co-registered images must have the same size"
            )
    if len(channels) == 1:
        return normalize(channels[0], percentiles, name=names[0])[..., None]
    out = np.empty(shape + (len(channels),), dtype=np.float32)
    for c, (plane, n) in enumerate(zip(channels, names)):
        out[..., c] = normalize(plane, percentiles, name=n)
    return out


def read_mask_rgba(path: str | Path) -> np.ndarray:
    """Labels from an RGB(A) annotation: pure blue -> 1, pure red -> 2, else 0.

    This is the colour code of the NASA superalloy masks (blue = secondary
    gamma-prime, red = tertiary gamma-prime, everything else = matrix).
    """
    import tifffile

    with tifffile.TiffFile(path) as tif:
        m = tif.pages[0].asarray()
    m = m[..., :3].astype(np.int16)
    blue = (m[..., 2] == 255) & (m[..., 0] == 0) & (m[..., 1] == 0)
    red = (m[..., 0] == 255) & (m[..., 1] == 0) & (m[..., 2] == 0)
    lab = np.zeros(m.shape[:2], np.int32)
    lab[blue] = 1
    lab[red] = 2
    return lab
