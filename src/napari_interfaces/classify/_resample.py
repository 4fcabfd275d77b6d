"""Image pyramid helpers shared by the basic and the learned pixel features (numpy only)."""

from __future__ import annotations

import numpy as np


def _pool2(x: np.ndarray) -> np.ndarray:
    """2 x 2 mean pooling (an odd last row/column is repeated)."""
    h, w = x.shape
    if h % 2 or w % 2:
        x = np.pad(x, ((0, h % 2), (0, w % 2)), mode="edge")
    return x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2).mean(axis=(1, 3))


def _lerp_weights(n_in: int, n_out: int, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices ``i0, i1`` and weights ``t`` (float32) of a linear upsampling by ``factor``."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) / factor - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = (pos - i0).astype(np.float32)
    return i0, i1, t


def _lerp_axis(
    x: np.ndarray, n_out: int, factor: int, axis: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Linear interpolation by ``factor`` along ``axis`` (pixel centres aligned), ``n_out`` long.

    ``out`` (optional) receives the result (e.g. a slice of the feature stack).
    """
    i0, i1, t = _lerp_weights(x.shape[axis], n_out, factor)
    shape = [1] * x.ndim
    shape[axis] = n_out
    t = t.reshape(shape)
    # a * (1 - t) + b * t, in place (no full-size temporaries beyond a and b)
    a = np.take(x, i0, axis=axis)
    b = np.take(x, i1, axis=axis)
    a *= 1 - t
    b *= t
    if out is None:
        a += b
        return a
    return np.add(a, b, out=out)


def _upsample(
    maps: list[np.ndarray], shape: tuple[int, int], factor: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Bilinear upsampling of pooled maps to ``shape`` (pixel-centre aligned); ``(h, w, n)``."""
    x = np.stack(maps, -1)  # (h2, w2, n)
    x = _lerp_axis(x, shape[0], factor, 0)
    return _lerp_axis(x, shape[1], factor, 1, out=out)
