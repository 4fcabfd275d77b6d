"""npe2 reader for micrographs (TIFF, PNG, JPEG; DM3/DM4/EMD/MRC with rosettasciio).

The layer's ``scale`` is the pixel size and its ``units`` are Å when the
file records a plausible one (``metadata["pixel_size"]`` too), so the
"Segment micrograph" dock rescales it to the model's pixel size
automatically; otherwise the layer stays in pixels. Annotation masks
(integer images with few values, or a few pure colours drawn over a grey
micrograph, like the NASA ``*_mask.tif`` files) open as a Labels layer
coloured like the file (:meth:`~napari_interfaces.io.micrograph.Micrograph.as_labels`).
A TIFF larger than the memory limit (``NAPARI_INTERFACES_MAX_PIXELS``) opens
lazily: a dask array over its tiles, read as napari shows them. A TIFF series
(ImageJ, OME or tifffile stacks: time, focal or tilt series) opens as one
``(frame, y, x)`` image over all its frames, read as napari shows them, with
the pixel size on ``y, x``.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import SizeLimitError
from ..io.micrograph import MICROGRAPH_SUFFIXES, read_micrograph

__all__ = ["get_reader", "read_layers", "series_layers"]


def get_reader(path):
    """The reader for one micrograph path, or ``None`` for other files."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(str(path))
    if p.suffix.lower() not in MICROGRAPH_SUFFIXES or not p.is_file():
        return None
    return read_layers


def read_layers(path):
    """LayerData tuples of one micrograph (an Image, or Labels for an annotation mask)."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        mic = read_micrograph(path, warn_frames=False)  # a series opens whole below
    except SizeLimitError:
        if Path(str(path)).suffix.lower() not in (".tif", ".tiff"):
            raise
        return _lazy_layers(path)  # too big for memory: napari streams the tiles it shows
    metadata = {
        "pixel_size": mic.pixel_size,
        "pixel_unit": "Å",
        "pixel_size_source": mic.source,
        "path": str(path),
    }
    if "ignored_pixel_size" in mic.metadata:
        metadata["ignored_pixel_size"] = mic.metadata["ignored_pixel_size"]
    kwargs = {"name": Path(str(path)).stem, "metadata": metadata}
    if mic.pixel_size:
        kwargs["scale"] = (mic.pixel_size, mic.pixel_size)
        kwargs["units"] = ("Å", "Å")
    if mic.metadata.get("frames", 1) > 1:
        return series_layers(path, mic, mic.pixel_size, kwargs)
    labels = mic.as_labels()
    if labels is not None:
        data, colors = labels
        if colors:
            from napari.utils.colormaps import DirectLabelColormap

            color_dict = {0: (0.0, 0.0, 0.0, 0.0), None: (0.0, 0.0, 0.0, 1.0), **colors}
            kwargs["colormap"] = DirectLabelColormap(color_dict=color_dict)
            metadata["label_colors"] = {int(k): list(v) for k, v in colors.items()}
        return [(data, kwargs, "labels")]
    data = mic.data
    if data.ndim == 3:
        kwargs["rgb"] = True
    else:
        kwargs["colormap"] = "gray"
    return [(data, kwargs, "image")]


def _lazy_layers(path):
    """An Image layer over a dask array for a TIFF larger than the memory limit."""
    import numpy as np

    mic = read_micrograph(path, lazy=True)
    data = mic.data
    kwargs = {
        "name": Path(str(path)).stem,
        "metadata": {
            "pixel_size": mic.pixel_size,
            "pixel_unit": "Å",
            "pixel_size_source": mic.source,
            "path": str(path),
            "lazy": True,
        },
    }
    if mic.pixel_size:
        kwargs["scale"] = (mic.pixel_size, mic.pixel_size)
        kwargs["units"] = ("Å", "Å")
    # contrast from one central tile, not from the whole (too large) image
    h, w = data.shape[:2]
    tile = np.asarray(data[h // 2 : h // 2 + 512, w // 2 : w // 2 + 512])
    lo, hi = float(np.nanmin(tile)), float(np.nanmax(tile))
    kwargs["contrast_limits"] = (lo, hi if hi > lo else lo + 1.0)
    if data.ndim == 3:
        kwargs["rgb"] = True
        kwargs.pop("contrast_limits")
    else:
        kwargs["colormap"] = "gray"
    return [(data, kwargs, "image")]


def series_layers(path, mic, pixel_size, kwargs) -> list[tuple]:
    """One Image layer ``(frame, y, x)`` over every frame of a series, read on demand.

    ``mic`` is the series' first frame (:func:`read_micrograph`), ``pixel_size``
    (Å or ``None``) goes on ``y, x``; ``kwargs`` are the layer's name and metadata.
    """
    import numpy as np

    from ..io.micrograph import read_frames

    _, frames = read_frames(path)
    kwargs["metadata"]["frames"] = len(frames)
    kwargs.pop("scale", None)
    kwargs.pop("units", None)
    if pixel_size:
        kwargs["scale"] = (1.0, pixel_size, pixel_size)
        kwargs["units"] = ("pixel", "Å", "Å")
    first = np.asarray(mic.data, np.float64)
    if first.ndim == 3:
        kwargs["rgb"] = True
    else:
        kwargs["colormap"] = "gray"
        lo, hi = float(np.nanmin(first)), float(np.nanmax(first))  # from the first frame
        kwargs["contrast_limits"] = (lo, hi if hi > lo else lo + 1.0)
    return [(frames.lazy, kwargs, "image")]
