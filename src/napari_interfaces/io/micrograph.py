"""Micrograph files: image + pixel size (Å).

Formats
-------
TIFF (``.tif``, ``.tiff``)
    via tifffile; the pixel size is read from, in order, OME-XML
    (``PhysicalSizeX`` + unit), ImageJ metadata (``unit`` with the
    ``XResolution`` tag) and the TIFF resolution tags (inch / cm).
PNG, JPEG (``.png``, ``.jpg``, ``.jpeg``)
    via imageio / Pillow; these carry no reliable physical pixel size.
DM3, DM4, EMD, MRC (``.dm3``, ``.dm4``, ``.emd``, ``.mrc``)
    via rosettasciio (``pip install rosettasciio`` or the ``micrographs``
    extra), imported only when such a file is read; the pixel size comes
    from the file's axes calibration.

:func:`read_micrograph` returns a :class:`Micrograph`; pass its
``pixel_size`` to :func:`napari_interfaces.segment.inference.segment_image`
so the image is rescaled to the model's pixel size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MICROGRAPH_SUFFIXES",
    "Micrograph",
    "read_micrograph",
    "to_angstrom",
    "write_labels_tiff",
]

TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg")
RSCIIO_SUFFIXES = (".dm3", ".dm4", ".emd", ".mrc")
MICROGRAPH_SUFFIXES = TIFF_SUFFIXES + PLAIN_SUFFIXES + RSCIIO_SUFFIXES

#: Length units -> Å.
_UNITS = {
    "a": 1.0, "å": 1.0, "Å": 1.0, "angstrom": 1.0, "ang": 1.0, "\\u00c5": 1.0,
    "pm": 0.01, "nm": 10.0, "nanometer": 10.0, "nanometre": 10.0,
    "um": 1e4, "µm": 1e4, "μm": 1e4, "micron": 1e4, "micrometer": 1e4, "microns": 1e4,
    "mm": 1e7, "cm": 1e8, "m": 1e10, "inch": 2.54e8, "in": 2.54e8,
}  # fmt: skip


def to_angstrom(value: float, unit: str | None) -> float | None:
    """``value`` in ``unit`` converted to Å (``None`` for unknown units or pixels)."""
    if unit is None:
        return None
    u = str(unit).strip()
    key = u if u in _UNITS else u.lower()
    if key not in _UNITS:
        return None
    v = float(value) * _UNITS[key]
    return v if np.isfinite(v) and v > 0 else None


@dataclass
class Micrograph:
    """An image with its physical pixel size.

    Attributes
    ----------
    data : ndarray
        ``(H, W)`` grey or ``(H, W, 3|4)`` colour image as stored.
    pixel_size : float or None
        Å per pixel (``None`` when the file does not say).
    source : str
        Where the pixel size came from (``"ome"``, ``"imagej"``, ``"tiff
        resolution"``, ``"rosettasciio"``, ``""``).
    path : Path or None
    metadata : dict
    """

    data: np.ndarray
    pixel_size: float | None = None
    source: str = ""
    path: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def gray(self) -> np.ndarray:
        """float32 ``(H, W)`` image (colour channels averaged)."""
        a = np.asarray(self.data)
        if a.ndim == 3 and a.shape[-1] in (3, 4):
            a = a[..., :3].astype(np.float32).mean(-1)
        return a.astype(np.float32, copy=False)


def read_micrograph(path: str | Path) -> Micrograph:
    """Read a micrograph and its pixel size.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For unsupported suffixes or unreadable files (message names the file).
    ImportError
        For DM3/DM4/EMD/MRC when rosettasciio is not installed (message says
        how to install it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        mic = _read_tiff(path)
    elif suffix in PLAIN_SUFFIXES:
        mic = _read_plain(path)
    elif suffix in RSCIIO_SUFFIXES:
        mic = _read_rsciio(path)
    else:
        raise ValueError(
            f"{path}: unsupported micrograph format {suffix!r}; supported: {', '.join(MICROGRAPH_SUFFIXES)}"
        )
    mic.path = path
    data = np.asarray(mic.data)
    data = np.squeeze(data)
    if data.ndim == 3 and data.shape[-1] not in (3, 4):
        data = data[0]  # first frame of a stack
    if data.ndim not in (2, 3):
        raise ValueError(f"{path}: expected a 2D image, got shape {np.shape(mic.data)}")
    mic.data = data
    return mic


def _read_tiff(path: Path) -> Micrograph:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            data = tf.asarray()
            page = tf.pages[0]
            ps, source = None, ""
            if tf.is_ome and tf.ome_metadata:
                ps = _ome_pixel_size(tf.ome_metadata)
                source = "ome" if ps else ""
            if ps is None and tf.is_imagej and tf.imagej_metadata is not None:
                ij = tf.imagej_metadata
                unit = ij.get("unit")
                xres = _resolution(page, "XResolution")
                if unit and xres:
                    ps = to_angstrom(1.0 / xres, unit)
                    source = "imagej" if ps else ""
            if ps is None:
                xres = _resolution(page, "XResolution")
                runit = page.tags.get("ResolutionUnit")
                runit = int(runit.value) if runit is not None else 1
                if xres and runit in (2, 3):  # inch, cm
                    ps = to_angstrom(1.0 / xres, "inch" if runit == 2 else "cm")
                    # 72/96/300 dpi are screen/print defaults, not a calibration
                    if runit == 2 and round(xres) in (72, 96, 150, 300, 600):
                        ps = None
                    source = "tiff resolution" if ps else ""
            meta = {"shape": list(data.shape), "dtype": str(data.dtype)}
    except tifffile.TiffFileError as exc:
        raise ValueError(f"{path}: not a readable TIFF: {exc}") from exc
    return Micrograph(data=data, pixel_size=ps, source=source, metadata=meta)


def _resolution(page, name: str) -> float | None:
    tag = page.tags.get(name)
    if tag is None:
        return None
    v = tag.value
    try:
        num, den = v if isinstance(v, tuple) else (v, 1)
        r = float(num) / float(den)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return r if r > 0 else None


def _ome_pixel_size(xml: str) -> float | None:
    m = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', xml)
    if not m:
        return None
    u = re.search(r'PhysicalSizeXUnit="([^"]+)"', xml)
    return to_angstrom(float(m.group(1)), u.group(1) if u else "µm")  # OME default unit: µm


def _read_plain(path: Path) -> Micrograph:
    try:
        import imageio.v3 as iio

        data = iio.imread(path)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable image: {exc}") from exc
    return Micrograph(data=np.asarray(data), pixel_size=None, source="")


def _read_rsciio(path: Path) -> Micrograph:
    suffix = path.suffix.lower()
    module = {
        ".dm3": "rsciio.digitalmicrograph",
        ".dm4": "rsciio.digitalmicrograph",
        ".emd": "rsciio.emd",
        ".mrc": "rsciio.mrc",
    }[suffix]
    try:
        import importlib

        reader = importlib.import_module(module).file_reader
    except ImportError as exc:
        raise ImportError(
            f"{path}: reading {suffix} files needs rosettasciio; install it with "
            "`pip install rosettasciio` (or `pip install napari-interfaces[micrographs]`)"
        ) from exc
    try:
        signals = reader(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{path}: rosettasciio could not read it: {exc}") from exc
    images = [s for s in signals if np.asarray(s["data"]).ndim >= 2]
    if not images:
        raise ValueError(f"{path}: no image in the file")
    sig = images[0]
    data = np.asarray(sig["data"])
    ps = None
    axes = [a for a in sig.get("axes", []) if a.get("navigate") is not True]
    if axes:
        ax = axes[-1]
        ps = to_angstrom(float(ax.get("scale", 1.0)), ax.get("units"))
    return Micrograph(
        data=data,
        pixel_size=ps,
        source="rosettasciio" if ps else "",
        metadata={"original_metadata_keys": sorted(sig.get("original_metadata", {}))[:20]},
    )


def write_labels_tiff(
    path: str | Path, labels: np.ndarray, pixel_size: float | None = None
) -> Path:
    """Write labels as an ImageJ TIFF with the pixel size (Å) in its metadata."""
    import tifffile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kw: dict[str, Any] = {}
    if pixel_size:
        kw = {"resolution": (1.0 / pixel_size, 1.0 / pixel_size), "metadata": {"unit": "angstrom"}}
    data = np.asarray(labels)
    if data.dtype == np.int64 or data.dtype == np.uint32:
        data = data.astype(np.int32 if data.max(initial=0) >= 65535 else np.uint16)
    tifffile.imwrite(path, data, imagej=True, **kw)
    return path
