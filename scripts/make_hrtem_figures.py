"""Make the figures of docs/hrtem.md (docs/images/hrtem_*.png).

    python scripts/make_hrtem_figures.py

1. ``hrtem_image_labels.png``: a 3.2 nm Au particle on 2 nm a-C ([110],
   200 kV, 2000 e/Å²) beside its exit-wave labels (the demo's scene).
2. ``hrtem_twin_defocus.png``: a twinned Au particle at three defoci from one
   cached exit wave.
3. ``hrtem_kirkland.png``: Kirkland's Fig. 5.12 test (C, Si, Cu, Au, U).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from ase import Atoms
    from matplotlib.figure import Figure

    from napari_interfaces.simulate.demo import DEMO_HRTEM, DEMO_STRUCTURE, save_figure
    from napari_interfaces.simulate.hrtem import HRTEMSimulator
    from napari_interfaces.simulate.structures import build_scene
    from napari_interfaces.simulate.workflow import simulate_hrtem

    OUT.mkdir(parents=True, exist_ok=True)
    out = simulate_hrtem(DEMO_STRUCTURE, DEMO_HRTEM.replace(device="numpy"), rng=1)
    img, inst = out.image, out.instances
    dy, dx = img.grid.spacing
    save_figure(OUT / "hrtem_image_labels.png", img.data, inst, (dx, dy),
                "Au 3.2 nm on 2 nm a-C, [110], 200 kV, 2000 e/Å²")  # fmt: skip

    scene = build_scene(extent=(56, 56), substrate_thickness=20, particle_diameter=40,
                        defects="twin", orientation=(1, -1, 0), rng=2)  # fmt: skip
    sim = HRTEMSimulator(scene.atoms, scene.particles, sampling=0.125, device="numpy")
    fig = Figure(figsize=(10, 3.6), dpi=100)
    for i, df in enumerate((-100, -40, 60)):
        ax = fig.add_subplot(1, 3, i + 1)
        im = sim.image(sim.ctf(defocus=df, cs=-2e5, focal_spread=20, aperture_mrad=25)).data
        ax.imshow(im, cmap="gray")
        ax.set_title(f"twinned Au, defocus {df} Å, Cs -20 µm")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT / "hrtem_twin_defocus.png")

    L = 51.2
    xs = np.linspace(0.2, 0.8, 5) * L
    atoms = Atoms(numbers=[6, 14, 29, 79, 92], positions=[[x, L / 2, 1.0] for x in xs],
                  cell=[L, L, 2.0])  # fmt: skip
    sim = HRTEMSimulator(atoms, sampling=L / 512, parametrization="kirkland", device="numpy")
    im = sim.image(sim.ctf(defocus=700, cs=1.3e7, aperture_mrad=10.37)).data
    fig = Figure(figsize=(8, 3), dpi=100)
    ax = fig.add_subplot(121)
    ax.imshow(im[192:320], cmap="gray", extent=[0, L, 320 * 0.1, 192 * 0.1])
    ax.set_title("C Si Cu Au U, 200 kV, Δf = 700 Å, Cs = 1.3 mm")
    ax2 = fig.add_subplot(122)
    ax2.plot(np.arange(512) * L / 512, im[256])
    ax2.set_xlabel("x (Å)")
    ax2.set_ylabel("intensity")
    ax2.set_title(f"min {im.min():.3f}, max {im.max():.3f} (Kirkland: 0.72, 1.03)")
    fig.tight_layout()
    fig.savefig(OUT / "hrtem_kirkland.png")
    print("wrote", *sorted(p.name for p in OUT.glob("hrtem_*.png")))


if __name__ == "__main__":
    main()
