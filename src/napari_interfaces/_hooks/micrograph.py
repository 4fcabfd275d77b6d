"""npe2 reader for micrographs (TIFF, PNG, JPEG; DM3/DM4/EMD/MRC with rosettasciio).

The Image layer's scale is the pixel size in Å when the file records one
(``metadata["pixel_size"]`` too), so the "Segment micrograph" dock rescales
it to the model's pixel size automatically.
"""

from __future__ import annotations

from pathlib import Path

from ..io.micrograph import MICROGRAPH_SUFFIXES, read_micrograph

__all__ = ["get_reader", "read_layers"]


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
    """LayerData tuples of one micrograph."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    mic = read_micrograph(path)
    kwargs = {
        "name": Path(str(path)).stem,
        "metadata": {
            "pixel_size": mic.pixel_size,
            "pixel_unit": "Å",
            "pixel_size_source": mic.source,
            "path": str(path),
        },
    }
    if mic.pixel_size:
        kwargs["scale"] = (mic.pixel_size, mic.pixel_size)
    data = mic.data
    if data.ndim == 3:
        kwargs["rgb"] = True
    else:
        kwargs["colormap"] = "gray"
    return [(data, kwargs, "image")]
