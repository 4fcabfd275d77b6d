"""Micrograph files: image + pixel size (Å).

Formats
-------
TIFF (``.tif``, ``.tiff``)
    via tifffile; the pixel size is read from, in order, OME-XML
    (``PhysicalSizeX`` + unit), ImageJ metadata (``unit`` with the
    ``XResolution`` tag) and the TIFF resolution tags (inch / cm). A stack
    gives its first frame (only that frame is read); :func:`read_frames` gives
    every frame of it, read one at a time.
PNG, JPEG, BMP (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``)
    via Pillow; these carry no reliable physical pixel size.
DM3, DM4, EMD, MRC (``.dm3``, ``.dm4``, ``.emd``, ``.mrc``)
    via rosettasciio (``pip install rosettasciio`` or the ``micrographs``
    extra), imported only when such a file is read; the pixel size comes
    from the file's axes calibration.

:func:`read_micrograph` returns a :class:`Micrograph`; pass its
``pixel_size`` to :func:`napari_interfaces.segment.inference.segment_image`
so the image is rescaled to the model's pixel size.

Safety
------
- **Size before allocation.** The declared size (TIFF page shape, PNG/JPEG
  header, rosettasciio's lazy shape) is checked with
  :func:`napari_interfaces.core.limits.check_pixels` before any pixel is
  read: an 8 KB file that declares 40000 x 40000 pixels fails at once with
  a one-line :class:`~napari_interfaces.core.errors.SizeLimitError`.
  Legitimately big TIFFs can be opened lazily
  (``read_micrograph(path, lazy=True)``: a dask array over tifffile's zarr
  store, read tile by tile), for operations that stream.
- **Declared bytes before decoding.** The stored type counts too: a
  float64 image needs eight bytes a pixel and the image commands work on
  float32 copies (:func:`~napari_interfaces.core.limits.check_image_bytes`),
  so a 420 KB zlib TIFF or a 6 KB EMD declaring 30000 x 30000 float64
  pixels fails before anything is inflated. Only the first TIFF page is
  parsed (a file with 100 000 pages opens at once); an MRC header's
  declared size is checked against the file's length.
- **Regular files only.** A FIFO, a device or a folder is refused before
  it is opened (:func:`~napari_interfaces.core.limits.check_regular_file`).
- **Non-finite pixels** (NaN, ±inf) follow one rule for every image
  command (segment, cluster, classify, evaluate, the napari reader): an
  image with no finite pixel is refused; otherwise each non-finite pixel
  is replaced by the median of the finite ones and a
  :class:`NonFiniteWarning` says how many (also recorded in
  ``metadata["non_finite_filled"]``). See :func:`fill_non_finite`.
- **Plausible pixel sizes only** (:data:`PIXEL_SIZE_RANGE`). TIFF
  resolution tags are mostly written by image editors (72, 96, 300 or even
  1 dpi) and are not a calibration: a pixel size outside 0.001 Å to 1e5 Å
  (10 µm, the coarsest optical or SEM pixel) is ignored (recorded in
  ``metadata["ignored_pixel_size"]``). Every print/screen density up to
  2540 dpi lies above 1e5 Å, so none of them can become a pixel size,
  while real calibrations (sub-Å HRTEM to µm SEM pixels) all pass.
- **Label images.** :meth:`Micrograph.as_labels` recognises annotation
  masks (integer images with few values, or colour images whose coloured
  pixels use a few pure colours over a grey background, like the NASA
  ``*_mask.tif`` annotations) so the napari reader opens them as Labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.geometry import Grid, GriddedArray
from ..core.limits import check_image_bytes, check_regular_file
from ..core.units import PIXEL, to_angstrom  # the one unit table (re-exported)

__all__ = [
    "LOSSLESS_SUFFIXES",
    "MICROGRAPH_SUFFIXES",
    "PIXEL_SIZE_RANGE",
    "FrameStack",
    "FramesWarning",
    "Micrograph",
    "MissingDependencyError",
    "NonFiniteWarning",
    "fill_non_finite",
    "plausible_pixel_size",
    "read_frames",
    "read_micrograph",
    "to_angstrom",
    "write_labels_tiff",
]

#: Pixel sizes (Å) accepted from a file: 0.001 Å .. 10 µm (see the module docstring).
PIXEL_SIZE_RANGE = (1e-3, 1e5)

#: At most this many distinct values (or pure colours) make an image a label image.
MAX_LABEL_VALUES = 32


class MissingDependencyError(InputError, ImportError):
    """An optional reader is not installed (the message says how to install it)."""


class NonFiniteWarning(UserWarning):
    """Non-finite pixels were replaced (the message says how many and by what)."""


class FramesWarning(UserWarning):
    """A file holds a series of frames and only the first was read."""


def fill_non_finite(data: np.ndarray, what: str = "image") -> tuple[np.ndarray, int]:
    """Apply the one non-finite rule of every image command; return the data and the count.

    An integer image is returned as is. A float image with no finite pixel
    is an :class:`~napari_interfaces.core.errors.InputError`; otherwise the
    non-finite pixels (NaN, ±inf) of each channel are replaced by the median
    of its finite pixels, with a :class:`NonFiniteWarning` naming how many.
    """
    data = np.asarray(data)
    if data.dtype.kind not in "fc":
        return data, 0
    bad = ~np.isfinite(data)
    n_bad = int(bad.sum())
    if n_bad == 0:
        return data, 0
    if n_bad == data.size:
        raise InputError(f"{what}: no finite pixel (all {data.size:,} are NaN or infinite)")
    out = np.array(data, copy=True)
    if out.ndim == 3 and out.shape[-1] in (3, 4):
        for c in range(out.shape[-1]):
            ch, b = out[..., c], bad[..., c]
            if b.any():
                ch[b] = np.median(ch[~b]) if (~b).any() else 0
    else:
        out[bad] = np.median(out[~bad])
    import warnings

    warnings.warn(
        f"{what}: {n_bad:,} of {data.size:,} pixels are NaN or infinite; "
        "replaced by the median of the finite pixels",
        NonFiniteWarning,
        stacklevel=3,
    )
    return out, n_bad


def plausible_pixel_size(value: float | None) -> bool:
    """Whether ``value`` (Å) lies in :data:`PIXEL_SIZE_RANGE`."""
    lo, hi = PIXEL_SIZE_RANGE
    return value is not None and bool(np.isfinite(value)) and lo <= value <= hi


TIFF_SUFFIXES = (".tif", ".tiff")
#: Read with Pillow (8/16-bit grey or colour, no pixel size).
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
#: Read with rosettasciio (the ``[formats]`` extra).
RSCIIO_SUFFIXES = (".dm3", ".dm4", ".emd", ".mrc")
#: The one list of image suffixes of the package: what :func:`read_micrograph`
#: reads. Folder listings (cluster series, corrections, classify) use it;
#: a reader that takes fewer derives its subset from it (:data:`LOSSLESS_SUFFIXES`).
MICROGRAPH_SUFFIXES = TIFF_SUFFIXES + PLAIN_SUFFIXES + RSCIIO_SUFFIXES
#: Lossless 8/16-bit image files (label images): TIFF and PNG.
LOSSLESS_SUFFIXES = tuple(s for s in MICROGRAPH_SUFFIXES if s in (*TIFF_SUFFIXES, ".png"))


@dataclass
class Micrograph:
    """An image with its physical pixel size (Å), or explicitly none (``"pixel"``).

    :attr:`grid` and :meth:`as_gridded` give it the
    :class:`~napari_interfaces.core.geometry.Grid` that HRTEM images and APT
    volumes carry; :meth:`from_gridded` takes one back.

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
    def unit(self) -> str:
        """``"Å"`` when the pixel size is known, else ``"pixel"`` (explicitly uncalibrated)."""
        return "Å" if self.pixel_size else PIXEL

    @property
    def grid(self) -> Grid:
        """The image's :class:`~napari_interfaces.core.geometry.Grid` (axes ``"yx"``).

        Pixels of :attr:`pixel_size` Å, or of 1 ``"pixel"`` when the file
        records no pixel size, the same geometry an HRTEM image or an APT
        volume carries (``grid.layer_kwargs()`` gives a napari layer its
        ``scale`` and ``units``).
        """
        s = float(self.pixel_size) if self.pixel_size else 1.0
        return Grid((0.0, 0.0), (s, s), self.unit, "yx")

    def as_gridded(self) -> GriddedArray:
        """The image as a :class:`~napari_interfaces.core.geometry.GriddedArray`.

        Its metadata are the micrograph's plus ``pixel_size_source`` and ``path``.
        """
        metadata = {**self.metadata, "pixel_size_source": self.source}
        if self.path is not None:
            metadata["path"] = str(self.path)
        return GriddedArray(self.data, self.grid, metadata)

    @classmethod
    def from_gridded(cls, image: GriddedArray, source: str = "grid") -> Micrograph:
        """A micrograph from a 2-D :class:`~napari_interfaces.core.geometry.GriddedArray`.

        The last axis' spacing is converted to Å through the one unit table
        (:mod:`napari_interfaces.core.units`); a grid in ``"pixel"`` (or an
        unknown unit) gives ``pixel_size=None``.
        """
        ps = to_angstrom(float(image.grid.spacing[-1]), image.grid.unit)
        return cls(
            data=image.data,
            pixel_size=ps,
            source=source if ps else "",
            metadata=dict(image.metadata),
        )

    @property
    def gray(self) -> np.ndarray:
        """float32 ``(H, W)`` image (colour channels averaged)."""
        a = np.asarray(self.data)
        if a.ndim == 3 and a.shape[-1] in (3, 4):
            a = a[..., :3].astype(np.float32).mean(-1)
        return a.astype(np.float32, copy=False)

    def as_labels(self) -> tuple[np.ndarray, dict[int, tuple[float, ...]]] | None:
        """``(labels, colors)`` when the image is an annotation mask, else ``None``.

        - an integer ``(H, W)`` image with at most :data:`MAX_LABEL_VALUES`
          distinct values: the values are the labels (``colors`` empty);
        - a colour ``(H, W, 3|4)`` image whose non-grey pixels use at most
          :data:`MAX_LABEL_VALUES` distinct colours (e.g. blue and red
          annotations drawn over the grey micrograph): label ``i`` for the
          ``i``-th colour by frequency, 0 for grey/black/white pixels;
          ``colors`` maps each label to its RGBA (0..1).
        """
        a = self.data
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "iub":
            return None
        if a.ndim == 2:
            values = np.unique(a)
            if len(values) > MAX_LABEL_VALUES or values.min() < 0:
                return None
            return a.astype(np.uint16 if values.max() > 255 else np.uint8, copy=False), {}
        if a.ndim != 3 or a.shape[-1] not in (3, 4):
            return None
        rgb = a[..., :3]
        coloured = ~((rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2]))
        if not coloured.any():
            return None
        colours, inverse, counts = np.unique(
            rgb[coloured], axis=0, return_inverse=True, return_counts=True
        )
        if len(colours) > MAX_LABEL_VALUES:
            return None
        order = np.argsort(-counts, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(1, len(order) + 1)
        labels = np.zeros(a.shape[:2], np.uint8)
        labels[coloured] = rank[np.asarray(inverse).ravel()]
        scale = 255.0 if a.dtype == np.uint8 else float(np.iinfo(a.dtype).max)
        colors = {
            int(rank[i]): tuple(float(c) / scale for c in colours[i]) + (1.0,)
            for i in range(len(colours))
        }
        return labels, colors


def read_micrograph(
    path: str | Path, *, lazy: bool = False, warn_frames: bool = True
) -> Micrograph:
    """Read a micrograph and its pixel size.

    Parameters
    ----------
    path : path-like
    lazy : bool
        TIFF only: return a dask array read tile by tile (no size limit;
        for operations that stream). Other formats ignore it.
    warn_frames : bool
        Warn (:class:`FramesWarning`) when the file is a series of which only
        the first frame is read; False for callers that read every frame
        themselves (:func:`read_frames`).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    InputError
        For unsupported suffixes or unreadable files (message names the file).
    SizeLimitError
        If the declared image is larger than the configured pixel limit.
    MissingDependencyError
        For DM3/DM4/EMD/MRC when rosettasciio is not installed (message says
        how to install it).
    """
    path = Path(path)
    check_regular_file(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        mic = _read_tiff(path, lazy)
    elif suffix in PLAIN_SUFFIXES:
        mic = _read_plain(path)
    elif suffix in RSCIIO_SUFFIXES:
        mic = _read_rsciio(path)
    else:
        raise InputError(
            f"{path}: unsupported micrograph format {suffix!r}; supported: {', '.join(MICROGRAPH_SUFFIXES)}"
        )
    mic.path = path
    data = mic.data
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    while data.ndim > 2 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 3 and data.shape[-1] not in (3, 4):
        data = data[0]  # first frame of a stack
    if data.ndim not in (2, 3):
        raise InputError(f"{path}: expected a 2D image, got shape {tuple(mic.data.shape)}")
    if warn_frames and mic.metadata.get("frames", 1) > 1:
        import warnings

        warnings.warn(
            f"{path}: a series of {mic.metadata['frames']} frames; only the first is read "
            "(classify --apply-to and the napari reader take every frame)",
            FramesWarning,
            stacklevel=2,
        )
    if lazy:
        mic.data = data
    else:
        mic.data, n_bad = fill_non_finite(np.asarray(data), str(path))
        if n_bad:
            mic.metadata["non_finite_filled"] = n_bad
    if mic.pixel_size is not None and not plausible_pixel_size(mic.pixel_size):
        mic.metadata["ignored_pixel_size"] = {"value_A": mic.pixel_size, "source": mic.source}
        mic.pixel_size, mic.source = None, ""
    return mic


class FrameStack:
    """The frames of a series (a multi-page TIFF, a time or focal series), read on demand.

    ``len(stack)`` frames of :attr:`shape` ``(n, H, W)`` (or ``(n, H, W,
    3|4)``); ``stack[i]`` reads frame ``i`` only, checks its declared bytes
    and applies the non-finite rule of :func:`read_micrograph`, so a series
    larger than memory is labelled frame by frame.
    """

    def __init__(self, frames: Any, what: str) -> None:
        self._frames = frames
        self.what = what
        self.shape = tuple(int(n) for n in frames.shape)
        self.dtype = np.dtype(frames.dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def lazy(self) -> Any:
        """The frames as one lazy array (dask for a TIFF): for viewers that read on demand."""
        return self._frames

    def __getitem__(self, i: int) -> np.ndarray:
        if not isinstance(i, int | np.integer) or not -len(self) <= i < len(self):
            raise IndexError(f"{self.what}: frame {i} of {len(self)}")
        i = int(i) % len(self)
        check_image_bytes(self.shape[1:], self.dtype.itemsize, f"{self.what}, frame {i}")
        frame = self._frames[i]
        try:
            frame = np.asarray(frame.compute() if hasattr(frame, "compute") else frame)
        except MemoryError:
            raise InputError(f"{self.what}: not enough memory to read frame {i}") from None
        except Exception as exc:
            raise InputError(f"{self.what}: frame {i} is not readable: {_one_line(exc)}") from None
        return fill_non_finite(frame, f"{self.what}, frame {i}")[0]


def read_frames(path: str | Path) -> tuple[Micrograph, FrameStack]:
    """Every frame of a micrograph file: its first frame (a :class:`Micrograph`) and all.

    A TIFF whose pages (or leading axes: time, focus, ...) hold several
    frames gives a :class:`FrameStack` of all of them, flattened to ``(n, H,
    W)``, read one at a time when indexed; any other file gives one frame.
    The pixel size and the first frame's checks are those of
    :func:`read_micrograph`.

    Raises
    ------
    InputError
        As :func:`read_micrograph`; also when the frames differ in shape from
        the first one.
    """
    path = Path(path)
    first = read_micrograph(path, warn_frames=False)  # every frame is read here
    shape = tuple(first.data.shape)
    frames: Any = first.data[None]
    if path.suffix.lower() in TIFF_SUFFIXES:
        try:
            lazy = _lazy_tiff(path)
        except Exception as exc:
            raise InputError(f"{path}: not a readable TIFF: {_one_line(exc)}") from None
        while lazy.ndim > len(shape) and lazy.shape[-1] == 1 and shape[-1] != 1:
            lazy = lazy[..., 0]
        if tuple(lazy.shape[lazy.ndim - len(shape) :]) != shape:
            raise InputError(
                f"{path}: the frames ({tuple(lazy.shape)}) do not match the first one ({shape})"
            )
        frames = lazy.reshape((-1, *shape))
    return first, FrameStack(frames, str(path))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _read_tiff(path: Path, lazy: bool = False) -> Micrograph:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            # only the first page is parsed: a file of 100 000 pages opens at once
            # (tifffile's series parsing of every page is what takes long)
            page = tf.pages.first if hasattr(tf.pages, "first") else tf.pages[0]
            if page is None:
                raise InputError(f"{path}: the TIFF has no image")
            frame = tuple(int(n) for n in page.shape)
            ps, source = _tiff_pixel_size(tf, page)
            if lazy:
                data = _lazy_tiff(path)
            else:
                check_image_bytes(frame, np.dtype(page.dtype).itemsize, str(path))
                data = page.asarray()
            meta = {"shape": list(frame), "dtype": str(page.dtype)}
            n_frames = _frame_count(tf, page)
            if n_frames > 1:
                meta["frames"] = n_frames
    except tifffile.TiffFileError as exc:
        raise InputError(f"{path}: not a readable TIFF: {_one_line(exc)}") from None
    except MemoryError:
        raise InputError(f"{path}: not enough memory to decode the TIFF") from None
    except Exception as exc:  # codecs (zlib, LZMA, JPEG...) raise their own types
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable TIFF: {_one_line(exc)}") from None
    return Micrograph(data=data, pixel_size=ps, source=source, metadata=meta)


def _frame_count(tf, page) -> int:
    """Frames of a TIFF series from its metadata alone (ImageJ, tifffile's shape, OME).

    Parsing every page would be slow for 100 000 pages, so a TIFF that says
    nothing is counted by its chain of pages (offsets only: 20 000 pages in
    0.02 s) when its second page is another frame like the first (same shape
    and type, not a reduced-resolution copy); otherwise it is one frame.
    """
    try:
        if tf.is_imagej and tf.imagej_metadata:
            return max(1, int(tf.imagej_metadata.get("images", 1)))
        if tf.is_shaped and tf.shaped_metadata:
            shape = tf.shaped_metadata[0].get("shape") or []
            return max(1, int(np.prod(shape)) // max(1, int(np.prod(page.shape))))
        if tf.is_ome and tf.ome_metadata:
            sizes: dict[str, int] = {}
            for k, v in re.findall(r'\bSize([TZC])="(\d+)"', tf.ome_metadata[:100_000]):
                sizes.setdefault(k, int(v))  # the first image's
            n = sizes.get("T", 1) * sizes.get("Z", 1)
            if int(getattr(page, "samplesperpixel", 1)) == 1:
                n *= sizes.get("C", 1)
            return max(1, n)
    except (TypeError, ValueError, AttributeError):
        pass
    return _page_frames(tf, page)


def _page_frames(tf, page) -> int:
    """Frames of a TIFF without series metadata: its pages, if the second is a frame too."""
    try:
        n = len(tf.pages)
        if n < 2:
            return 1
        second = tf.pages[1]
        if (
            second is None
            or tuple(second.shape) != tuple(page.shape)
            or second.dtype != page.dtype
            or getattr(second, "is_reduced", False)
        ):
            return 1
        return n
    except (TypeError, ValueError, AttributeError, IndexError):
        return 1


def _lazy_tiff(path: Path):
    """A dask array over tifffile's zarr store of ``path`` (first series)."""
    import dask.array as da
    import tifffile
    import zarr

    store = tifffile.imread(path, aszarr=True)
    z = zarr.open(store, mode="r")
    if hasattr(z, "shape"):
        return da.from_zarr(z)
    return da.from_zarr(z["0"])  # multiscale: full resolution


def _tiff_pixel_size(tf, page) -> tuple[float | None, str]:
    """Pixel size (Å) and its source from a TIFF's metadata (see the module docstring)."""
    from .tiff import tiff_grid

    grid = tiff_grid(tf)
    if grid is not None:
        ps = to_angstrom(float(grid.spacing[-1]), grid.unit)
        if ps:
            return ps, "napari-interfaces"
    if tf.is_ome and tf.ome_metadata:
        ps = _ome_pixel_size(tf.ome_metadata)
        if ps:
            return ps, "ome"
    if tf.is_imagej and tf.imagej_metadata is not None:
        unit = tf.imagej_metadata.get("unit")
        xres = _resolution(page, "XResolution")
        if unit and xres:
            ps = to_angstrom(1.0 / xres, unit)
            if ps:
                return ps, "imagej"
    xres = _resolution(page, "XResolution")
    runit = page.tags.get("ResolutionUnit")
    runit = int(runit.value) if runit is not None else 1
    if xres and runit in (2, 3):  # inch, cm: kept only when plausible (read_micrograph)
        ps = to_angstrom(1.0 / xres, "inch" if runit == 2 else "cm")
        if ps:
            return ps, "tiff resolution"
    return None, ""


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
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size  # from the header: nothing decoded yet
            per_band = 4 if im.mode in ("I", "F") else 2 if im.mode.startswith("I;16") else 1
            check_image_bytes((h, w, len(im.getbands())), per_band, str(path))
            im.load()
            data = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable image: {_one_line(exc)}") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{path}: {_one_line(exc)}") from None
    return Micrograph(data=data, pixel_size=None, source="")


def _read_rsciio(path: Path) -> Micrograph:
    suffix = path.suffix.lower()
    module = {
        ".dm3": "rsciio.digitalmicrograph",
        ".dm4": "rsciio.digitalmicrograph",
        ".emd": "rsciio.emd",
        ".mrc": "rsciio.mrc",
    }[suffix]
    if suffix == ".mrc":  # before anything else: a header declaring nz = 2e9 must not hang
        _check_mrc_header(path)
    try:
        import importlib

        reader = importlib.import_module(module).file_reader
    except ImportError:
        raise MissingDependencyError(
            f"{path}: reading {suffix} files needs rosettasciio; install it with "
            "`pip install rosettasciio` (or `pip install napari-interfaces[micrographs]`)"
        ) from None
    try:
        signals = reader(str(path), lazy=True)  # shapes first, pixels later
    except Exception as exc:
        raise InputError(f"{path}: rosettasciio could not read it: {_one_line(exc)}") from None
    images = [s for s in signals if len(np.shape(s["data"])) >= 2]
    if not images:
        raise InputError(f"{path}: no image in the file")
    sig = images[0]
    shape = tuple(np.shape(sig["data"]))
    frame = shape[-3:] if len(shape) >= 3 and shape[-1] in (3, 4) else shape[-2:]
    lazy = sig["data"]
    check_image_bytes(frame, np.dtype(getattr(lazy, "dtype", np.float64)).itemsize, str(path))
    while len(lazy.shape) > len(frame):
        lazy = lazy[0]  # first frame of a stack
    try:
        data = np.asarray(lazy.compute() if hasattr(lazy, "compute") else lazy)
    except MemoryError:
        raise InputError(f"{path}: not enough memory to read the image") from None
    except Exception as exc:
        raise InputError(f"{path}: rosettasciio could not read it: {_one_line(exc)}") from None
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


#: MRC modes -> bytes per value (0 int8, 1 int16, 2 float32, 3 complex int16,
#: 4 complex64, 6 uint16, 12 float16; 101 is 4-bit, counted as one byte).
_MRC_ITEMSIZE = {0: 1, 1: 2, 2: 4, 3: 4, 4: 8, 6: 2, 12: 2, 101: 1}


def _check_mrc_header(path: Path) -> None:
    """Refuse an MRC whose header declares more data than the file holds."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if len(head) < 1024:
        raise InputError(f"{path}: not an MRC file (header of {len(head)} bytes, need 1024)")
    for order in ("<", ">"):
        nx, ny, nz, mode = struct.unpack(order + "4i", head[:16])
        if mode in _MRC_ITEMSIZE and 0 < nx < 1 << 24 and 0 < ny < 1 << 24:
            break
    else:
        raise InputError(f"{path}: not an MRC file (bad dimensions or mode in the header)")
    nsym = struct.unpack(order + "i", head[92:96])[0]
    if nz < 0 or nsym < 0:
        raise InputError(f"{path}: MRC header declares negative sizes (nz {nz}, extended {nsym})")
    declared = nx * ny * max(nz, 1) * _MRC_ITEMSIZE[mode]
    if 1024 + nsym + declared > size:
        raise InputError(
            f"{path}: the MRC header declares {nx}x{ny}x{nz} values ({declared:,} bytes) "
            f"but the file has {size:,} bytes"
        )


def write_labels_tiff(
    path: str | Path, labels: np.ndarray, pixel_size: float | None = None
) -> Path:
    """Write labels as an ImageJ TIFF with the pixel size (Å), atomically.

    Same as :func:`napari_interfaces.io.tiff.write_tiff` (the one TIFF
    writer), kept for its callers.
    """
    from .tiff import write_tiff

    return write_tiff(path, np.asarray(labels), pixel_size=pixel_size, unit="Å")
