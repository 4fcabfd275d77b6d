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
from collections.abc import Sequence

from . import config
from .errors import SizeLimitError

__all__ = ["available_memory", "check_bytes", "check_pixels", "max_bytes", "max_pixels"]


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
