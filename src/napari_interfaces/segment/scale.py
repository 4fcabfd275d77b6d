"""Pixel size of a micrograph that carries none: estimated from lattice fringes.

Most PNG, JPEG and many TIFF files have no pixel size, and a wrong one puts
the particles at the wrong scale for the network. Crystalline particles in
HRTEM show lattice fringes whose spacing is known for the material (fcc
metals: the {111} planes, 2.355 Å for Au, 2.26 Å for Pt, 2.04–2.09 Å for
Ni/Cu). In the power spectrum the fringes are sharp spots on top of the
isotropic background of the amorphous support and the CTF's Thon rings, so
:func:`estimate_pixel_size` looks for the frequency where the spectrum is
most *anisotropic*: for each ring of frequencies, the brightest pixel over
the ring's median. The lowest-frequency ring with a strong spot is taken as
the {111} fringe (the largest spacing; {200}, {220}, {311} spots may be
brighter but lie further out); the pixel size follows as
``spacing × frequency``.

The estimate is only as good as the fringes: images without resolved
fringes (sampling coarser than about 1.1 Å/px, or amorphous particles) give
a low ``confidence`` and :attr:`PixelSizeEstimate.pixel_size` ``None``, and
the caller falls back to the model's own pixel size and says so.

A single set of fringes cannot say which lattice planes it shows: on
simulated single-particle images the lowest strong ring is {111} only about
40 % of the time, and {200}, {220} or {311} read as {111} put the estimate
×1.15, ×1.63 or ×1.91 too large. :func:`choose_fringe_family` resolves this
with a second, independent cue, the particle size: each fcc family is one
hypothesis (pixel size ``d_hkl × frequency``), the segmented particles'
typical equivalent diameter (px) times each hypothesis is scored against the
particle sizes the model was trained on (:data:`DEFAULT_DIAMETER_RANGE`), and
the most probable hypothesis wins; :attr:`PixelSizeEstimate.probability`
says how sure, :attr:`PixelSizeEstimate.cue` which cue decided and
:attr:`PixelSizeEstimate.candidates` lists every hypothesis with its score.
Without fringes, :func:`estimate_from_particle_size` puts the particles'
typical diameter at the middle of that range (a rough estimate, within
about ×1.6, and said so) instead of assuming the model's own pixel size.

Examples
--------
>>> import numpy as np
>>> y, x = np.mgrid[:512, :512]
>>> d, ps = 2.355, 0.25              # Au {111} fringes imaged at 0.25 Å/px
>>> img = np.random.default_rng(0).normal(0, 1, (512, 512))
>>> img += 0.5 * np.cos(2 * np.pi * (0.6 * x + 0.8 * y) * ps / d) * ((x - 256) ** 2 + (y - 256) ** 2 < 80**2)
>>> round(estimate_pixel_size(img).pixel_size, 2)
0.25
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "AU_111",
    "DEFAULT_DIAMETER_RANGE",
    "FCC_FAMILIES",
    "PixelSizeEstimate",
    "ScaleCandidate",
    "choose_fringe_family",
    "estimate_from_particle_size",
    "estimate_pixel_size",
    "typical_diameter",
]

#: {111} lattice spacing of gold in Å (a = 4.0782 Å, d = a / √3).
AU_111 = 2.3546

#: fcc reflection families whose fringes may be the lowest strong ring:
#: ``(name, d_hkl / d_111, prior probability)``. The priors are the measured
#: shares on simulated single-particle Au images (96 ``hrtem_default``
#: samples, seed 3003, at 0.2-0.45 Å/px: 41 / 21 / 22 / 14 %), rounded
#: towards {111}.
FCC_FAMILIES = (
    ("111", 1.0, 0.40),
    ("200", float(np.sqrt(3 / 4)), 0.25),
    ("220", float(np.sqrt(3 / 8)), 0.20),
    ("311", float(np.sqrt(3 / 11)), 0.15),
)

#: Projected equivalent diameters (Å) of the particles of the shipped
#: model's training recipe (``hrtem_default``, nominal diameters 18-40 Å of
#: spheres and polyhedra): 5-95 % range of the true masks of 96 simulated
#: samples (seed 3003; not the held-out seed 2002).
DEFAULT_DIAMETER_RANGE = (13.4, 35.4)

#: Softness of the diameter range's edges (standard deviation in log
#: diameter: the segmentation's diameter error, about ±10 %).
DIAMETER_SOFTNESS = 0.1


@dataclass
class ScaleCandidate:
    """One hypothesis of :func:`choose_fringe_family`.

    Attributes
    ----------
    family : str
        fcc reflection family the fringes are taken to be (``"111"`` ...).
    pixel_size : float
        Å/px under this hypothesis.
    prior : float
        Prior probability of the family.
    size_log_likelihood : float
        Log-likelihood of the particles' typical diameter at this pixel size.
    probability : float
        Posterior probability (the candidates' sum to 1).
    """

    family: str
    pixel_size: float
    prior: float
    size_log_likelihood: float
    probability: float

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {
            "family": self.family,
            "pixel_size": round(self.pixel_size, 5),
            "prior": self.prior,
            "size_log_likelihood": round(self.size_log_likelihood, 3),
            "probability": round(self.probability, 3),
        }


@dataclass
class PixelSizeEstimate:
    """Result of :func:`estimate_pixel_size`.

    Attributes
    ----------
    pixel_size : float or None
        Å/px, or ``None`` when the fringes are too weak to trust.
    frequency : float
        Frequency of the fringe spots (cycles per pixel).
    confidence : float
        Spot strength: the brightest spectrum pixel of that ring over the
        ring's median (a score of the strongest fringe; at least
        ``min_confidence`` to be used).
    spacing : float
        The lattice spacing (Å) the fringes were taken to be.
    note : str
        How the estimate was reached, for reports.
    cue : str
        What decided: ``"fringes"`` (the lowest strong fringe read as
        {111}) or ``"fringes + particle size"`` (:func:`choose_fringe_family`).
    probability : float or None
        How sure the chosen hypothesis is (posterior probability among the
        candidates; ``None`` for the fringes alone).
    fringe_pixel_size : float or None
        The fringes-only estimate (lowest strong fringe read as {111}).
    candidates : tuple of ScaleCandidate
        The hypotheses scored (empty for the fringes alone).
    particle_diameter_px : float or None
        The particles' typical equivalent diameter (px) the size cue used.
    """

    pixel_size: float | None
    frequency: float
    confidence: float
    spacing: float
    note: str = ""
    cue: str = "fringes"
    probability: float | None = None
    fringe_pixel_size: float | None = None
    candidates: tuple = ()
    particle_diameter_px: float | None = None

    @property
    def family(self) -> str | None:
        """The fcc family the fringes were read as (``"111"`` ...); ``None`` without fringes."""
        if self.candidates:
            return max(self.candidates, key=lambda c: c.probability).family
        if self.cue == "particle size" or self.pixel_size is None:
            return None
        return "111"

    def describe(self) -> str:
        """One line for status bars and logs: the cue that decided and how sure.

        E.g. ``"fringes as {220}, chosen by particle size, p = 0.62"``,
        ``"fringes as {111}, confidence 35"`` (the fringes alone: the spot
        strength) or ``"particle size alone, no usable fringes (rough), p =
        0.29"`` (the chance of being within 15 %).
        """
        if self.pixel_size is None:
            return f"no estimate: {self.note or 'no fringes'}"
        if self.cue == "particle size":
            p = "" if self.probability is None else f", p = {self.probability:.2f}"
            return f"particle size alone, no usable fringes (rough){p}"
        text = f"fringes as {{{self.family}}}"
        if self.cue == "fringes + particle size":
            text += ", chosen by particle size"
        if self.probability is not None:
            return text + f", p = {self.probability:.2f}"
        return text + f", confidence {self.confidence:.0f}"

    def to_dict(self) -> dict:
        """JSON-ready description (for result summaries)."""
        d = {
            "pixel_size": self.pixel_size,
            "confidence": round(float(self.confidence), 2),
            "note": self.note,
            "cue": self.cue,
            "family": self.family,
            "description": self.describe(),
        }
        if self.probability is not None:
            d["probability"] = round(float(self.probability), 3)
            d["fringe_pixel_size"] = self.fringe_pixel_size
            d["particle_diameter_px"] = (
                None if self.particle_diameter_px is None else round(self.particle_diameter_px, 2)
            )
            d["candidates"] = [c.to_dict() for c in self.candidates]
        return d


def _spectrum(image: np.ndarray, tile: int) -> np.ndarray:
    """Welch-averaged power spectrum (fftshifted) over up to 16 Hann-windowed tiles."""
    img = np.asarray(image, np.float32)
    h, w = img.shape
    t = min(tile, h, w)
    t -= t % 2
    ys = np.linspace(0, h - t, max(1, min(4, h // t)), dtype=int)
    xs = np.linspace(0, w - t, max(1, min(4, w // t)), dtype=int)
    win = np.outer(np.hanning(t), np.hanning(t)).astype(np.float32)
    acc = np.zeros((t, t), np.float64)
    for y in ys:
        for x in xs:
            a = img[y : y + t, x : x + t]
            a = (a - a.mean()) * win
            acc += np.abs(np.fft.fft2(a)) ** 2
    return np.fft.fftshift(acc)


def estimate_pixel_size(
    image: np.ndarray,
    spacing: float = AU_111,
    min_confidence: float = 20.0,
    tile: int = 512,
    pixel_size_range: tuple[float, float] = (0.03, 1.1),
) -> PixelSizeEstimate:
    """Estimate the pixel size (Å/px) of an HRTEM image from its lattice fringes.

    Parameters
    ----------
    image : (H, W) array
    spacing : float
        The strongest expected lattice spacing in Å (default Au {111}).
    min_confidence : float
        Spot-over-ring-median ratio below which no estimate is returned.
    tile : int
        Side of the tiles whose power spectra are averaged.
    pixel_size_range : (float, float)
        Pixel sizes considered (Å/px); fringes of ``spacing`` are resolved
        only below ``spacing / 2``.

    Returns
    -------
    PixelSizeEstimate
    """
    img = np.asarray(image, np.float32)
    if img.ndim != 2 or min(img.shape) < 32:
        return PixelSizeEstimate(None, float("nan"), 0.0, spacing, "image too small")
    p = _spectrum(img, tile)
    t = p.shape[0]
    c = t // 2
    yy, xx = np.mgrid[:t, :t]
    r = np.hypot(yy - c, xx - c)
    rb = np.rint(r).astype(int)
    half = xx >= c  # the spectrum of a real image is symmetric: use one half
    kmin = max(3, int(np.ceil(pixel_size_range[0] / spacing * t)))
    kmax = min(c - 2, int(np.floor(pixel_size_range[1] / spacing * t)))
    if kmax <= kmin:
        return PixelSizeEstimate(None, float("nan"), 0.0, spacing, "image too small")
    med = np.zeros(c, np.float64)
    top = np.zeros(c, np.float64)
    peak_r = np.zeros(c, np.float64)
    sel = half & (rb >= kmin) & (rb <= kmax)
    vals, rbs, rs = p[sel], rb[sel], r[sel]
    order = np.argsort(rbs, kind="stable")
    vals, rbs, rs = vals[order], rbs[order], rs[order]
    bounds = np.searchsorted(rbs, np.arange(kmin, kmax + 2))
    for i, k in enumerate(range(kmin, kmax + 1)):
        v = vals[bounds[i] : bounds[i + 1]]
        if v.size < 8:
            continue
        j = int(np.argmax(v))
        med[k], top[k], peak_r[k] = float(np.median(v)), float(v[j]), rs[bounds[i] + j]
    # rings where the image has (almost) no power (beyond the band limit of an
    # upsampled image) must not win by dividing by nothing: a floor of 5 % of
    # the typical ring level
    floor = 0.05 * float(np.median(med[kmin : kmax + 1]))
    score = np.where(top > 0, top / (med + floor + 1e-30), 0.0)
    best = float(score.max())
    if best <= 0:
        return PixelSizeEstimate(None, float("nan"), 0.0, spacing, "no fringes")
    # the lowest-frequency strong spot ring is read as the largest spacing,
    # {111} (higher orders, {200} {220} {311}, may be brighter in a given
    # zone but lie further out). Measured on simulated Au: right within 30 %
    # for about 70 % of single-particle images at 0.1-0.4 Å/px and 93 % at
    # 0.8 Å/px (where only {111} is resolved); see docs/hrtem_segmentation.md.
    thresh = max(min_confidence, 0.25 * best)
    strong = [
        k
        for k in range(kmin, kmax + 1)
        if score[k] >= thresh and score[k] >= score[max(kmin, k - 1) : k + 2].max()
    ]
    k1 = strong[0] if strong else int(np.argmax(score))
    conf = float(score[k1])
    # refine the spot's radius by a power-weighted centroid around its pixel
    f = _refine(p, r, peak_r[k1], k1) / t
    note = f"lowest strong fringe at {f:.4f} cycles/px read as {{111}} = {spacing:g} Å"
    if conf < min_confidence:
        return PixelSizeEstimate(None, f, conf, spacing, f"fringes too weak ({conf:.1f})")
    ps = float(spacing * f)
    return PixelSizeEstimate(ps, f, conf, spacing, note, fringe_pixel_size=ps)


def typical_diameter(mask: np.ndarray, min_fraction: float = 0.25) -> float | None:
    """Median equivalent diameter (px) of the particles of a mask.

    Connected components smaller than ``min_fraction`` of the largest one
    (specks, cut-off pieces) are left out; ``None`` without particles.
    """
    from scipy import ndimage

    lab, n = ndimage.label(np.asarray(mask, bool))
    if n == 0:
        return None
    area = np.bincount(lab.ravel(), minlength=n + 1)[1:].astype(np.float64)
    area = area[area >= max(4.0, min_fraction * area.max())]
    if area.size == 0:
        return None
    return float(np.median(2 * np.sqrt(area / np.pi)))


def _log_box(x: float, lo: float, hi: float, s: float) -> float:
    """Log density of log ``x`` under a uniform [log lo, log hi] blurred by N(0, s)."""
    from scipy.special import ndtr

    a = (np.log(x) - np.log(lo)) / s
    b = (np.log(x) - np.log(hi)) / s
    return float(np.log(max(float(ndtr(a) - ndtr(b)), 1e-300) / np.log(hi / lo)))


def choose_fringe_family(
    estimate: PixelSizeEstimate,
    diameter_px: float | None,
    diameter_range: tuple[float, float] = DEFAULT_DIAMETER_RANGE,
    families: tuple = FCC_FAMILIES,
    softness: float = DIAMETER_SOFTNESS,
) -> PixelSizeEstimate:
    """Resolve which fcc family the fringes are with the particle-size cue.

    Each family ``hkl`` is one hypothesis, pixel size ``d_hkl × frequency``
    (the {111} one is the fringes-only estimate). Its score is the family's
    prior times the likelihood of the particles' typical diameter at that
    pixel size (``diameter_px × pixel_size`` in Å) under ``diameter_range``
    (uniform in log diameter, edges blurred by ``softness``); the most
    probable wins.

    Parameters
    ----------
    estimate : PixelSizeEstimate
        From :func:`estimate_pixel_size` (the fringes read as {111}).
    diameter_px : float or None
        Typical equivalent particle diameter in pixels
        (:func:`typical_diameter` of a segmentation); ``None``: the
        fringes-only estimate is kept (and the note says so).
    diameter_range : (float, float)
        Expected equivalent diameters (Å).
    families : tuple
        ``(name, d_hkl / d_111, prior)`` per family.
    softness : float
        Standard deviation (log diameter) of the range's edges.

    Returns
    -------
    PixelSizeEstimate
        With ``cue``, ``probability``, ``candidates`` and the chosen pixel size.
    """
    from dataclasses import replace

    if estimate.pixel_size is None:
        return estimate
    if not diameter_px or diameter_px <= 0:
        return replace(estimate, note=estimate.note + "; no particles for the size cue")
    ps111 = estimate.fringe_pixel_size or estimate.pixel_size
    scores = []
    for name, ratio, prior in families:
        ps = ps111 * ratio
        ll = _log_box(diameter_px * ps, diameter_range[0], diameter_range[1], softness)
        scores.append((name, ps, prior, ll, np.log(prior) + ll))
    top = max(sc[4] for sc in scores)
    w = np.exp(np.array([sc[4] for sc in scores]) - top)
    w /= w.sum()
    cands = tuple(
        ScaleCandidate(n, float(ps), float(pr), float(ll), float(p))
        for (n, ps, pr, ll, _), p in zip(scores, w, strict=True)
    )
    best = max(cands, key=lambda c: c.probability)
    d_a = diameter_px * best.pixel_size
    note = (
        f"fringe at {estimate.frequency:.4f} cycles/px read as {{{best.family}}} "
        f"(p = {best.probability:.2f}; particles {d_a:.0f} Å across at "
        f"{best.pixel_size:.3g} Å/px, expected {diameter_range[0]:g}-{diameter_range[1]:g} Å)"
    )
    return replace(
        estimate,
        pixel_size=float(best.pixel_size),
        spacing=float(estimate.spacing * [r for n, r, _ in families if n == best.family][0]),
        note=note,
        cue="fringes + particle size",
        probability=float(best.probability),
        fringe_pixel_size=float(ps111),
        candidates=cands,
        particle_diameter_px=float(diameter_px),
    )


def _refine(p: np.ndarray, r: np.ndarray, r0: float, k: int) -> float:
    """Power-weighted mean radius of the brightest spot near ring ``k``."""
    c = p.shape[0] // 2
    ring = (np.abs(r - k) <= 1.5) & (np.arange(p.shape[1])[None, :] >= c)
    v = np.where(ring, p, 0.0)
    iy, ix = np.unravel_index(int(np.argmax(v)), v.shape)
    y0, y1 = max(0, iy - 1), min(p.shape[0], iy + 2)
    x0, x1 = max(0, ix - 1), min(p.shape[1], ix + 2)
    w = p[y0:y1, x0:x1]
    rr = r[y0:y1, x0:x1]
    return float((w * rr).sum() / w.sum()) if w.sum() > 0 else float(r0)


def estimate_from_particle_size(
    diameter_px: float | None,
    diameter_range: tuple[float, float] = DEFAULT_DIAMETER_RANGE,
    fringes: PixelSizeEstimate | None = None,
) -> PixelSizeEstimate | None:
    """A rough pixel size from the particle size alone (no usable fringes).

    The particles' typical diameter (px) is put at the geometric middle of
    ``diameter_range`` (Å): ``pixel_size = sqrt(lo × hi) / diameter_px``,
    right within a factor ``sqrt(hi / lo)`` (about 1.6 for the default
    range) when the particles are of the expected sizes.
    :attr:`PixelSizeEstimate.probability` is the chance of being within
    15 % under a log-uniform size prior over the range.

    Returns
    -------
    PixelSizeEstimate or None
        ``None`` without particles.
    """
    if not diameter_px or diameter_px <= 0:
        return None
    lo, hi = diameter_range
    ps = float(np.sqrt(lo * hi) / diameter_px)
    width = float(np.log(hi / lo))
    prob = float(min(1.0, 2 * np.log(1.15) / width))
    why = fringes.note if fringes is not None and fringes.note else "no fringes"
    note = (
        f"{why}; particles {diameter_px:.0f} px across put at {np.sqrt(lo * hi):.0f} Å, the "
        f"middle of {lo:g}-{hi:g} Å (rough: within ×{np.sqrt(hi / lo):.2f})"
    )
    return PixelSizeEstimate(
        ps,
        float("nan") if fringes is None else fringes.frequency,
        0.0 if fringes is None else fringes.confidence,
        float("nan") if fringes is None else fringes.spacing,
        note,
        cue="particle size",
        probability=prob,
        fringe_pixel_size=None,
        particle_diameter_px=float(diameter_px),
    )
