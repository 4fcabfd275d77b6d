"""A small APT specimen the tests generate: ``.pos`` + ``.RRNG`` + ``.RNG`` with known truth.

Replaces the former ``tests/data/apt_Si_excerpt.*`` (an excerpt of APAV's GPL test
data): a synthetic layered Ni-Al-Cr specimen (:func:`napari_interfaces.apt.synthetic.
synthesize`, seeded, so identical on every machine) written by the package's own
``write_pos`` and ``write_rrng``, and the same ranges as an Oak Ridge ``.RNG`` written
here (the package has no ``.rng`` writer). One molecular range (``AlNi++``, in a mass
window only background ions reach) checks that both readers decompose molecular ions
alike. ``from _apt_excerpt import write_excerpt`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: the molecular range: AlNi++ ((27 + 58) / 2 = 42.5 Da), wide and clear of every synthetic
#: peak, so that only (a dozen) background ions fall in it
MOLECULAR = (36.0, 48.0, "AlNi", {"Al": 1, "Ni": 1})


@dataclass
class Excerpt:
    pos: Path
    rrng: Path
    rng: Path
    spec: object  # SyntheticAPT: the cloud with its truth columns, the ranges
    ranges: object  # RangeTable written to both files (synthetic ranges + MOLECULAR)


def _rng_text(ranges) -> str:
    """``ranges`` in the Oak Ridge ``.rng`` layout (one column per element)."""
    els = list(ranges.elements)
    out = [f"{len(els)} {len(ranges.ranges)}"]
    for el in els:
        out += [el, f"{el} 0.5 0.5 0.5"]
    out.append("-" * 16 + " " + " ".join(els))
    for r in ranges.ranges:
        counts = " ".join(str(r.composition.get(el, 0)) for el in els)
        out.append(f". {r.lo:.4f} {r.hi:.4f} {counts}")
    return "\n".join(out) + "\n"


def write_excerpt(folder: Path, seed: int = 7) -> Excerpt:
    """Write ``excerpt.pos``, ``excerpt.RRNG`` and ``excerpt.RNG`` (about 2,600 ions)."""
    from napari_interfaces.apt.ranging import Range, RangeTable
    from napari_interfaces.apt.synthetic import synthesize
    from napari_interfaces.io import write_pos
    from napari_interfaces.io.ranges import write_rrng

    folder = Path(folder)
    spec = synthesize("layered", size_nm=(3.0, 3.0, 6.0), seed=seed)
    lo, hi, ion, comp = MOLECULAR
    masses = np.asarray(spec.cloud.mass)
    peaks_inside = [r for r in spec.ranges.ranges if r.lo < hi and lo < r.hi]
    assert not peaks_inside, f"the molecular window overlaps {peaks_inside}"
    assert np.count_nonzero((masses >= lo) & (masses < hi)) > 0  # background ions reach it
    ranges = RangeTable([*spec.ranges.ranges, Range(lo, hi, ion, comp, "#808080")])
    pos = write_pos(folder / "excerpt.pos", spec.cloud)
    rrng = write_rrng(folder / "excerpt.RRNG", ranges)
    rng = folder / "excerpt.RNG"
    rng.write_text(_rng_text(ranges))
    return Excerpt(pos, rrng, rng, spec, ranges)
