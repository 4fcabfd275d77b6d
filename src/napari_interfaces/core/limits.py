"""Size limits checked *before* allocating, so a hostile or careless file
cannot exhaust the machine's memory.

Two limits, each from the configuration (``config.yaml`` or the
environment, see :mod:`.config`):

``max_pixels`` (``NAPARI_INTERFACES_MAX_PIXELS``)
    The most pixels/voxels one image or volume read into memory may have.
    Default: what fits in half of the available memory at 8 bytes a pixel,
    capped at 2**31.
``max_bytes`` (``NAPARI_INTERFACES_MAX_BYTES``)
    The most bytes one allocation (a read, a crop, a grid, a sampling) may
    take. Default: half of the available memory.

Readers call :func:`check_pixels` with the declared shape from the file's
header; engine code calls :func:`check_bytes` with its estimate. Both raise
a one-line :class:`~.errors.SizeLimitError` that says the size, the limit
and how to raise it.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence

from . import config
from .errors import SizeLimitError

__all__ = [
    "WORK_BYTES_PER_PIXEL",
    "available_memory",
    "check_bytes",
    "check_image_bytes",
    "check_npz",
    "check_pixels",
    "check_regular_file",
    "max_bytes",
    "max_pixels",
    "read_bounded",
]

#: Bytes per pixel an image command needs besides the decoded pixels (float32
#: copies: normalised image, rescaled image, probabilities, labels).
WORK_BYTES_PER_PIXEL = 16


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``; 8 GiB if unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _configured(key: str) -> int | None:
    value = config.get(key, None)
    if value in (None, ""):
        return None
    try:
        n = int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise SizeLimitError(
            f"{config.ENV_PREFIX}{key.upper()}: expected a number, got {value!r}"
        ) from None
    if n <= 0:
        raise SizeLimitError(f"{config.ENV_PREFIX}{key.upper()}: must be positive, got {n}")
    return n


def max_bytes() -> int:
    """The largest single allocation allowed, in bytes."""
    return _configured("max_bytes") or available_memory() // 2


def max_pixels() -> int:
    """The largest image/volume (pixels or voxels) a reader may load into memory."""
    return _configured("max_pixels") or min(2**31, max(max_bytes() // 8, 1))


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def check_pixels(shape: Sequence[int], what: str, limit: int | None = None) -> int:
    """Raise :class:`SizeLimitError` if an array of ``shape`` exceeds ``max_pixels``.

    Parameters
    ----------
    shape : sequence of int
        The declared shape (from a file header, or a computed grid).
    what : str
        What is being read, for the message (e.g. the file name).
    limit : int, optional
        Override the configured limit.

    Returns
    -------
    int
        The number of pixels.
    """
    n = math.prod(int(s) for s in shape)
    if any(int(s) < 0 for s in shape):
        raise SizeLimitError(f"{what}: negative size {tuple(shape)}")
    lim = limit if limit is not None else max_pixels()
    if n > lim:
        dims = "x".join(str(int(s)) for s in shape)
        raise SizeLimitError(
            f"{what}: {dims} = {n:,} pixels exceeds the limit of {lim:,} "
            f"(raise it with {config.ENV_PREFIX}MAX_PIXELS)"
        )
    return n


def check_bytes(nbytes: float, what: str, limit: int | None = None) -> None:
    """Raise :class:`SizeLimitError` if allocating ``nbytes`` exceeds ``max_bytes``."""
    lim = limit if limit is not None else max_bytes()
    if not math.isfinite(nbytes) or nbytes > lim:
        raise SizeLimitError(
            f"{what}: needs about {_fmt_bytes(nbytes)}, more than the limit of "
            f"{_fmt_bytes(lim)} (raise it with {config.ENV_PREFIX}MAX_BYTES)"
        )


def check_image_bytes(shape: Sequence[int], itemsize: int, what: str) -> int:
    """Check a declared image before decoding: pixels, decoded bytes and working bytes.

    ``itemsize`` is the stored type's size (a float64 image needs eight
    bytes a pixel, a uint8 one); commands then work on float32 copies
    (:data:`WORK_BYTES_PER_PIXEL`). A compressed file that declares a huge
    image (a zlib or LZMA "bomb") fails here, before a byte is inflated.
    """
    n = check_pixels(shape, what)
    if n == 0:  # not a size problem (no lazy fallback): the file holds no pixel
        from .errors import InputError

        raise InputError(f"{what}: empty image (shape {tuple(int(s) for s in shape)})")
    check_bytes(n * (int(itemsize) + WORK_BYTES_PER_PIXEL), f"{what} ({n:,} pixels)")
    return n


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def check_regular_file(path: str | os.PathLike, what: str | None = None) -> int:
    """Refuse anything but a regular file (a FIFO would hang, ``/dev/zero`` never ends).

    Symlinks are followed (a link to a regular file is fine). Returns the
    file's size in bytes.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    InputError
        A folder, FIFO, device or socket; one line naming the path.
    """
    from .errors import InputError

    name = what or str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
        raise InputError(f"{name}: is {kind}, expected a regular file")
    return int(st.st_size)


def read_bounded(path: str | os.PathLike, limit: int | None = None, what: str | None = None):
    """The bytes of a regular file of at most ``limit`` bytes (default ``max_bytes``)."""
    size = check_regular_file(path, what)
    lim = limit if limit is not None else max_bytes()
    if size > lim:
        raise SizeLimitError(
            f"{what or path}: {_fmt_bytes(size)} is more than the limit of {_fmt_bytes(lim)}"
        )
    with open(path, "rb") as fh:
        data = fh.read(lim + 1)
    if len(data) > lim:
        raise SizeLimitError(f"{what or path}: grew past the limit of {_fmt_bytes(lim)}")
    return data


def check_npz(npz: str | os.PathLike, what: str = "array file") -> int:
    """Check every array's declared dtype x shape in an ``.npz`` before decoding any.

    A small compressed file can declare gigabytes; each ``.npy`` header (a
    few bytes) is read, the total is checked with
    :func:`check_bytes`, and a member whose
    stored size disagrees with its header is refused. Returns the total.
    """
    import zipfile
    from pathlib import Path

    import numpy as np

    from .errors import InputError

    npz = Path(npz)
    check_regular_file(npz)
    total = 0
    try:
        with zipfile.ZipFile(npz) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    fmt = np.lib.format
                    version = fmt.read_magic(fh)
                    read = (
                        fmt.read_array_header_1_0
                        if version == (1, 0)
                        else (fmt.read_array_header_2_0)
                    )
                    shape, _fortran, dtype = read(fh, max_header_size=10000)
                    if dtype.hasobject:
                        raise InputError(f"{npz}: {info.filename} holds Python objects (pickle)")
                    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    head = fh.tell()
                if info.file_size != head + nbytes:
                    raise InputError(
                        f"{npz}: {info.filename} declares {shape} {dtype} ({nbytes:,} bytes) "
                        f"but holds {max(info.file_size - head, 0):,}; not a valid {what}"
                    )
                total += nbytes
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        if isinstance(exc, InputError):
            raise
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"{npz}: not a valid {what}: {reason}") from None
    check_bytes(total, f"{npz} (the arrays it declares)")
    return total
