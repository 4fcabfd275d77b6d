"""Baseline phase finders beside HED.

* :func:`iso_concentration`: what AP Suite users do by hand: one element's
  (smoothed) concentration thresholded at an iso value. The default iso
  value is Otsu's threshold of the concentration histogram in the specimen,
  i.e. halfway between the two populations; pass ``iso`` (atomic fraction)
  and ``element`` to fix them.
* :func:`gmm_phases`: a Gaussian mixture of voxel compositions (as
  CompositionSpace does), the number of components chosen by BIC
  (1..``max_components``) on a subsample of voxels.

Both return raw labels; :func:`~napari_interfaces.apt.phases.merge_by_composition`
then merges classes that are not distinct phases (so one-phase data gives
"no interface found").
"""

from __future__ import annotations

import numpy as np

__all__ = ["gmm_phases", "iso_concentration"]


def iso_concentration(
    comp: np.ndarray,
    tot: np.ndarray,
    mask: np.ndarray,
    volume=None,
    channels: list[int] | None = None,
    element: str | None = None,
    iso: float | None = None,
) -> np.ndarray:
    """Labels 1 (below the iso value) and 2 (at or above), 0 outside ``mask``."""
    if element is not None:
        if volume is None or element not in volume.elements:
            raise ValueError(f"element {element!r} not in the data")
        ch = volume.elements.index(element)
    else:
        ch = (channels or [0])[0]
    c = comp[ch]
    vals = c[mask]
    if vals.size == 0:
        return np.zeros(mask.shape, np.int32)
    if iso is None:
        from skimage.filters import threshold_otsu

        iso = float(threshold_otsu(vals)) if np.ptp(vals) > 0 else float(vals.mean())
    out = np.where(c >= iso, 2, 1).astype(np.int32)
    out[~mask] = 0
    return out


def gmm_phases(
    comp: np.ndarray,
    tot: np.ndarray,
    mask: np.ndarray,
    volume=None,
    channels: list[int] | None = None,
    max_components: int = 3,
    n_fit: int = 6000,
    seed: int = 0,
) -> np.ndarray:
    """Labels from a Gaussian mixture of the voxel composition vectors."""
    from sklearn.mixture import GaussianMixture

    ch = channels if channels else list(range(len(comp)))
    X = comp[ch][:, mask].T.astype(np.float64)
    if len(X) == 0:
        return np.zeros(mask.shape, np.int32)
    rng = np.random.default_rng(seed)
    fit = X[rng.choice(len(X), size=min(n_fit, len(X)), replace=False)]
    best, best_bic = None, np.inf
    for k in range(1, max_components + 1):
        if k > len(fit):
            break
        g = GaussianMixture(k, covariance_type="full", random_state=seed, reg_covar=1e-5)
        g.fit(fit)
        bic = g.bic(fit)
        if bic < best_bic:
            best, best_bic = g, bic
    out = np.zeros(mask.shape, np.int32)
    out[mask] = best.predict(X).astype(np.int32) + 1
    return out
