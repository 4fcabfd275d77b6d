"""Make the figure of docs/apt.md: ``docs/images/apt_overview.png``.

Run ``python scripts/make_apt_figures.py``. Uses the real ``Si.pos`` from
``../shared/data/apt`` when present (panels a, b) and a seeded synthetic
specimen (panels c, d).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAPARI_INTERFACES_SHARED_DATA", REPO.parent / "shared" / "data"))
OUT = REPO / "docs" / "images"


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napari_interfaces.apt.slicing import slab
    from napari_interfaces.apt.spectrum import mass_spectrum, plot_spectrum
    from napari_interfaces.apt.synthetic import synthesize
    from napari_interfaces.apt.voxelize import voxelize
    from napari_interfaces.io.apt_pointcloud import read_pos
    from napari_interfaces.io.ranges import read_rrng

    OUT.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.2))

    si = SHARED / "apt" / "Si.pos"
    if si.exists():
        cloud, ranges = read_pos(si), read_rrng(SHARED / "apt" / "Si.RRNG")
        edges, counts = mass_spectrum(cloud.mass, bin_width=0.05, mass_max=90)
        plot_spectrum(axes[0, 0], edges, counts, ranges)
        axes[0, 0].set_title("a  Si.pos (945,211 ions): mass spectrum, ranges shaded")
        vox = voxelize(cloud, ranges, voxel_size=1.0, delocalization=(1.5, 3.0, 3.0))
        img, g2 = slab(vox.composition("Cr", fill=np.nan), vox.grid, "y", 0.0, 10.0)
        ext = [
            g2.origin[1] - g2.spacing[1] / 2,
            g2.origin[1] + (img.shape[1] - 0.5) * g2.spacing[1],
            g2.origin[0] - g2.spacing[0] / 2,
            g2.origin[0] + (img.shape[0] - 0.5) * g2.spacing[0],
        ]
        im = axes[0, 1].imshow(img, origin="lower", extent=ext, cmap="magma", vmin=0, vmax=70)
        fig.colorbar(im, ax=axes[0, 1], label="Cr at.% (CrO, CrO2, Cr2O decomposed)")
        axes[0, 1].set_xlabel("x (nm)")
        axes[0, 1].set_ylabel("z (nm)")
        axes[0, 1].set_title("b  Cr at.%, 1 nm voxels, deloc. 3x3x1.5 nm,\n10 nm thick x-z slab")
    else:
        for ax in axes[0]:
            ax.text(0.5, 0.5, "../shared/data/apt not found", ha="center", transform=ax.transAxes)

    s = synthesize("isolated", size_nm=(24, 24, 24), seed=0, width_nm=1.5)
    v = voxelize(s.cloud, s.ranges, voxel_size=1.0, delocalization=(1.5, 3.0, 3.0))
    al, g2 = slab(v.composition("Al", fill=np.nan), v.grid, "z", 12.0, 1.0)
    truth, _ = s.phase_volume(v.grid, v.shape)
    tz, _ = slab(truth.astype(np.float32), v.grid, "z", 12.0, 1.0)
    ext = [
        g2.origin[1] - 0.5,
        g2.origin[1] + al.shape[1] - 0.5,
        g2.origin[0] - 0.5,
        g2.origin[0] + al.shape[0] - 0.5,
    ]
    im = axes[1, 0].imshow(al, origin="lower", extent=ext, cmap="viridis", vmin=0, vmax=25)
    axes[1, 0].contour(tz, levels=[0.5], colors="w", extent=ext, origin="lower", linewidths=1)
    fig.colorbar(im, ax=axes[1, 0], label="Al at.%")
    axes[1, 0].set_xlabel("x (nm)")
    axes[1, 0].set_ylabel("y (nm)")
    axes[1, 0].set_title("c  synthetic γ/γ′ (seed 0): Al at z = 12 nm, white = true interface")

    d_meas = s.signed_distance(s.cloud.xyz.astype(np.float64))
    sp = s.ranges.species_of(s.cloud.mass)
    bins = np.arange(-5, 5.01, 0.5)
    centres = (bins[:-1] + bins[1:]) / 2
    k = np.digitize(d_meas, bins) - 1
    ok = (k >= 0) & (k < len(centres)) & (sp >= 0)
    for idx, el in enumerate(("Ni", "Al", "Cr")):
        tot = np.bincount(k[ok], minlength=len(centres))
        n_el = np.bincount(k[ok & (sp == idx)], minlength=len(centres))
        dd = np.linspace(-5, 5, 201)
        (line,) = axes[1, 1].plot(
            dd,
            s.true_profile(dd, el) if el != "Ni" else s.true_profile(dd, el) - 60,
            lw=1.5,
            label=f"{el} true",
        )
        meas = 100 * n_el / np.maximum(tot, 1)
        axes[1, 1].plot(
            centres,
            meas if el != "Ni" else meas - 60,
            "o",
            ms=4,
            color=line.get_color(),
            label=f"{el} measured",
        )
    axes[1, 1].set_xlabel("signed distance to the true interface (nm), > 0 in γ′")
    axes[1, 1].set_ylabel("at.% (Ni shifted by −60)")
    axes[1, 1].set_ylim(0, 25)
    axes[1, 1].set_title("d  true profile (10–90 % width 1.5 nm) vs ranged ions")
    axes[1, 1].legend(fontsize="small", ncol=3, loc="center left")
    fig.tight_layout()
    out = OUT / "apt_overview.png"
    fig.savefig(out, dpi=110)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
