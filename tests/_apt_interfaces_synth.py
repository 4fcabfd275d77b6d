"""Tiny synthetic two-phase specimens for tests of the interface pipeline.

Test/benchmark helper, not part of the installed package (it was
``napari_interfaces.apt.interfaces_synth``). Import it as
``from _apt_interfaces_synth import two_phase`` from tests (``tests/`` is
on ``sys.path`` under pytest) or after ``sys.path.insert(0, "<repo>/tests")``.

Independent of the full synthetic generator of :mod:`napari_interfaces.apt.synthetic`
(used by the benchmark): atoms uniform in a box, each atom's element drawn
from a composition that changes across the interface as an error function of
the signed distance ``d`` to it (positive inside phase B):
``c(d) = c_A + (c_B - c_A) * (1 + erf(d / width)) / 2``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from napari_interfaces.apt.interfaces import AtomSet

__all__ = ["two_phase", "true_profile"]

DEFAULT_A = {"Ni": 0.75, "Al": 0.20, "Cr": 0.05}
DEFAULT_B = {"Ni": 0.45, "Al": 0.10, "Cr": 0.45}


def _geometry_params(geometry: str, size: np.ndarray, rng: np.random.Generator, randomize: bool):
    if geometry == "layered":
        n = np.array([0.0, 0.0, 1.0])
        if randomize:
            n = n + rng.normal(0, 0.35, 3)
        return {
            "normal": n / np.linalg.norm(n),
            "point": size / 2 + (rng.normal(0, 2, 3) if randomize else 0),
        }
    if geometry == "isolated":
        if not randomize:
            return {"centres": [size / 2], "radii": [0.3 * float(size.min())]}
        k = int(rng.integers(1, 4))
        return {
            "centres": [rng.random(3) * size for _ in range(k)],
            "radii": list(rng.uniform(2.5, 0.35 * float(size.min()), k)),
        }
    if geometry == "interconnected":
        period = float(rng.uniform(10, 16)) if randomize else 12.0
        return {"period": period, "shift": rng.random(3) * period if randomize else np.zeros(3)}
    if geometry == "single":
        return {}
    raise ValueError(f"unknown geometry {geometry!r}")


def _sdf(geometry: str, p: np.ndarray, prm: dict) -> np.ndarray:
    """Signed distance (nm) to the interface, positive inside phase B, for p (n, 3) xyz."""
    if geometry == "layered":
        return (p - prm["point"]) @ prm["normal"]
    if geometry == "isolated":
        d = np.full(len(p), -np.inf)
        for c, r in zip(prm["centres"], prm["radii"]):
            d = np.maximum(d, r - np.linalg.norm(p - c, axis=1))
        return d
    if geometry == "interconnected":
        # gyroid level set, divided by its mean gradient norm: about a distance
        k = 2 * np.pi / prm["period"]
        q = (p + prm["shift"]) * k
        g = (
            np.sin(q[:, 0]) * np.cos(q[:, 1])
            + np.sin(q[:, 1]) * np.cos(q[:, 2])
            + np.sin(q[:, 2]) * np.cos(q[:, 0])
        )
        return g / (k * 1.2)
    return np.full(len(p), -1e9)


def two_phase(
    geometry: str = "layered",
    size_nm: tuple[float, float, float] = (16.0, 16.0, 24.0),
    density: float = 30.0,
    width_nm: float = 0.5,
    comp_a: dict[str, float] | None = None,
    comp_b: dict[str, float] | None = None,
    seed: int = 0,
    randomize: bool = False,
) -> tuple[AtomSet, dict]:
    """Atoms of a two-phase box and the ground truth.

    Returns
    -------
    atoms : AtomSet
    truth : dict with ``sdf`` (callable xyz -> signed distance), ``comp_a``,
        ``comp_b``, ``width_nm``, ``elements``
    """
    comp_a = comp_a or DEFAULT_A
    comp_b = comp_b or DEFAULT_B
    elements = sorted(set(comp_a) | set(comp_b))
    rng = np.random.default_rng(seed)
    size = np.asarray(size_nm, np.float64)
    n = rng.poisson(density * float(np.prod(size)))
    p = rng.random((n, 3)) * size
    prm = _geometry_params(geometry, size, rng, randomize)
    d = _sdf(geometry, p, prm)
    f = 0.5 * (1 + erf(d / width_nm)) if width_nm > 0 else (d > 0).astype(float)
    ca = np.array([comp_a.get(e, 0.0) for e in elements])
    cb = np.array([comp_b.get(e, 0.0) for e in elements])
    probs = ca[None] + f[:, None] * (cb - ca)[None]
    cum = np.cumsum(probs, axis=1)
    u = rng.random(n)[:, None]
    el = np.minimum((u > cum).sum(axis=1), len(elements) - 1)
    atoms = AtomSet(p.astype(np.float32), el.astype(np.int16), elements)
    truth = {
        "geometry": geometry,
        "sdf": lambda xyz: _sdf(geometry, np.asarray(xyz, np.float64), prm),
        "comp_a": dict(comp_a),
        "comp_b": dict(comp_b),
        "width_nm": width_nm,
        "elements": elements,
        "size_nm": tuple(size_nm),
    }
    return atoms, truth


def true_profile(truth: dict, distance_nm: np.ndarray) -> dict[str, np.ndarray]:
    """True at.% of each element vs signed distance (positive in phase B)."""
    w = truth["width_nm"]
    f = 0.5 * (1 + erf(np.asarray(distance_nm) / w)) if w > 0 else (distance_nm > 0).astype(float)
    return {
        e: 100
        * (
            truth["comp_a"].get(e, 0.0)
            + f * (truth["comp_b"].get(e, 0.0) - truth["comp_a"].get(e, 0.0))
        )
        for e in truth["elements"]
    }
