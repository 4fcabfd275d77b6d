"""A grid of square chips over an image.

Chips of ``chip`` pixels are placed every ``stride`` pixels (``stride <
chip`` overlaps them). Borders: ``"shift"`` (default) adds one last row /
column of chips flush with the far edge so every pixel is covered;
``"drop"`` leaves the uncovered strip (it is painted by the nearest chip).

Examples
--------
>>> from napari_interfaces.cluster.chips import make_grid
>>> g = make_grid((100, 80), chip=32, stride=32)
>>> g.rows, g.cols, g.n_chips
(4, 3, 12)
>>> g.ys.tolist(), g.xs.tolist()
([0, 32, 64, 68], [0, 32, 48])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChipGrid", "make_grid", "extract_chips", "iter_chip_batches", "apply_clahe"]


@dataclass(frozen=True)
class ChipGrid:
    """Where the chips are.

    Attributes
    ----------
    shape : (int, int)
        Image height and width in pixels.
    chip, stride : int
        Chip side and step in pixels.
    ys, xs : numpy.ndarray
        Top (row) and left (column) pixel of the chip rows / columns.
    """

    shape: tuple[int, int]
    chip: int
    stride: int
    ys: np.ndarray
    xs: np.ndarray
    border: str = "shift"

    @property
    def rows(self) -> int:
        return len(self.ys)

    @property
    def cols(self) -> int:
        return len(self.xs)

    @property
    def n_chips(self) -> int:
        return self.rows * self.cols

    @property
    def origins(self) -> np.ndarray:
        """``(N, 2)`` top-left ``(y, x)`` of every chip, row-major."""
        yy, xx = np.meshgrid(self.ys, self.xs, indexing="ij")
        return np.stack([yy.ravel(), xx.ravel()], axis=1)

    def rc(self) -> tuple[np.ndarray, np.ndarray]:
        """Grid row and column index of every chip (row-major)."""
        r, c = np.divmod(np.arange(self.n_chips), self.cols)
        return r, c

    def settings(self) -> dict:
        return {"chip": self.chip, "stride": self.stride, "border": self.border}


def _starts(n: int, chip: int, stride: int, border: str) -> np.ndarray:
    s = np.arange(0, n - chip + 1, stride)
    if border == "shift" and s[-1] + chip < n:
        s = np.append(s, n - chip)
    return s.astype(np.int64)


def make_grid(
    shape: tuple[int, ...], chip: int = 64, stride: int | None = None, border: str = "shift"
) -> ChipGrid:
    """The chip grid for an image of ``shape`` (``(H, W)`` or ``(H, W, C)``).

    Raises
    ------
    ValueError
        Image smaller than one chip, non-positive sizes, stride > chip
        (pixels would be skipped), unknown border mode.
    """
    chip = int(chip)
    stride = chip if stride is None else int(stride)
    if chip < 4:
        raise ValueError(f"chip size must be at least 4 pixels, got {chip}")
    if stride < 1:
        raise ValueError(f"stride must be at least 1 pixel, got {stride}")
    if stride > chip:
        raise ValueError(f"stride ({stride}) larger than the chip ({chip}) would skip pixels")
    if border not in ("shift", "drop"):
        raise ValueError(f"border must be 'shift' or 'drop', got {border!r}")
    h, w = int(shape[0]), int(shape[1])
    if h < chip or w < chip:
        raise ValueError(
            f"the image ({h}x{w} pixels) is smaller than one chip ({chip}x{chip}); use a smaller chip"
        )
    return ChipGrid(
        (h, w),
        chip,
        stride,
        _starts(h, chip, stride, border),
        _starts(w, chip, stride, border),
        border,
    )


def extract_chips(
    image: np.ndarray, grid: ChipGrid, index: np.ndarray | slice | None = None
) -> np.ndarray:
    """Copy chips out of ``image`` as ``(N, chip, chip, C)`` float32.

    ``index`` selects chips (row-major numbering); all by default.
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[..., None]
    org = grid.origins if index is None else grid.origins[index]
    win = np.lib.stride_tricks.sliding_window_view(img, (grid.chip, grid.chip), axis=(0, 1))
    # win: (H-c+1, W-c+1, C, c, c)
    out = win[org[:, 0], org[:, 1]]
    return np.ascontiguousarray(np.moveaxis(out, 1, -1))


def iter_chip_batches(image: np.ndarray, grid: ChipGrid, batch: int = 4096):
    """Yield ``(start, chips)`` batches of at most ``batch`` chips in order."""
    n = grid.n_chips
    for s in range(0, n, batch):
        yield s, extract_chips(image, grid, slice(s, min(n, s + batch)))


def apply_clahe(
    image: np.ndarray, kernel_size: int | None = None, clip_limit: float = 0.01
) -> np.ndarray:
    """Contrast-limited adaptive histogram equalization of every channel.

    Input is float in about ``[0, 1]`` (as from
    :func:`~napari_interfaces.cluster.images.prepare_images`).
    """
    from skimage.exposure import equalize_adapthist

    img = np.asarray(image, dtype=np.float32)
    squeeze = img.ndim == 2
    if squeeze:
        img = img[..., None]
    out = np.empty_like(img)
    for c in range(img.shape[-1]):
        out[..., c] = equalize_adapthist(
            np.clip(img[..., c], 0, 1), kernel_size=kernel_size, clip_limit=clip_limit
        )
    return out[..., 0] if squeeze else out
