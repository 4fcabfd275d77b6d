"""HRTEM demo: Au nanoparticle on amorphous carbon -> multislice image + labels.

Run by ``napari-interfaces demo`` (see :mod:`napari_interfaces.demo`): writes
``image.tif`` (noisy image, float32), ``image_noise_free.tif``,
``labels.tif`` (per-particle instance labels from the particle-only exit
wave), ``hrtem.png`` (image beside its labels), ``scene.xyz`` (+
``scene_particles.xyz``) and ``summary.json`` into ``out_dir`` and returns
napari layers (image, labels, atoms as 2D points in Å; all with scale and units).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = ["DEMO_PARAMS", "hrtem_layers", "run_demo", "save_figure"]

#: The demo's parameters (small enough for a few seconds on 2 cores).
DEMO_PARAMS = dict(
    extent=(48.0, 48.0),
    substrate_thickness=20.0,
    particle_diameter=32.0,
    orientation=(1, 1, 0),
    energy_kv=200.0,
    sampling=0.125,
    slice_thickness=2.0,
    defocus=-60.0,
    cs=-2e5,
    focal_spread=20.0,
    aperture_mrad=25.0,
    dose=2000.0,
)


def save_figure(path, image, labels, sampling, title: str = "") -> None:
    """PNG of an image beside its labels (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    ny, nx = image.shape
    ext = [0, nx * sampling[0] / 10, ny * sampling[1] / 10, 0]  # nm
    fig = Figure(figsize=(8, 4), dpi=110)
    a1, a2 = fig.add_subplot(121), fig.add_subplot(122)
    a1.imshow(image, cmap="gray", extent=ext)
    a1.set_title(title or "simulated HRTEM image")
    a1.set_xlabel("x (nm)")
    a1.set_ylabel("y (nm)")
    a2.imshow(image, cmap="gray", extent=ext)
    masked = np.ma.masked_equal(labels, 0)
    a2.imshow(masked, cmap="autumn", alpha=0.45, extent=ext, interpolation="nearest")
    a2.set_title("labels (particle-only exit wave)")
    a2.set_xlabel("x (nm)")
    fig.tight_layout()
    fig.savefig(path)


def run_demo(out_dir: str | Path, progress: Progress | None = None) -> list[tuple[Any, dict, str]]:
    """Run the HRTEM demo; returns LayerDataTuples."""
    from ..io.tiff import write_tiff
    from .hrtem import HRTEMSimulator, make_labels
    from .structures import build_scene

    progress = as_progress(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = DEMO_PARAMS
    t0 = time.perf_counter()
    scene = build_scene(
        extent=p["extent"],
        substrate_thickness=p["substrate_thickness"],
        particle_diameter=p["particle_diameter"],
        orientation=p["orientation"],
        rng=5,
    )
    scene.write(out / "scene.xyz")
    t_struct = time.perf_counter() - t0
    sim = HRTEMSimulator(
        scene.atoms,
        scene.particles,
        energy_kv=p["energy_kv"],
        sampling=p["sampling"],
        slice_thickness=p["slice_thickness"],
        device="cpu",
    )
    ctf = sim.ctf(
        defocus=p["defocus"], cs=p["cs"], focal_spread=p["focal_spread"],
        aperture_mrad=p["aperture_mrad"],
    )  # fmt: skip
    clean = sim.image(ctf, progress=progress).data
    noisy_img = sim.image(ctf, dose=p["dose"], rng=1)
    noisy = noisy_img.data
    mask, inst = make_labels(sim, "exit_wave", progress=progress)
    sampling = sim.exit_waves().sampling
    dy, dx = noisy_img.grid.spacing
    write_tiff(out / "image.tif", noisy, pixel_size=(dy, dx))
    write_tiff(out / "image_noise_free.tif", clean, pixel_size=(dy, dx))
    write_tiff(out / "labels.tif", inst.astype(np.int32), pixel_size=(dy, dx))
    save_figure(out / "hrtem.png", noisy, inst, sampling,
                f"Au {p['particle_diameter'] / 10:g} nm on a-C, 200 kV, {p['dose']:g} e/Å²")  # fmt: skip
    timings = {k: round(v, 3) for k, v in sim.exit_waves().timings.items()}
    timings["structure"] = round(t_struct, 3)
    summary = {
        "params": {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.items()},
        "n_atoms": len(scene.atoms),
        "n_particle_atoms": len(scene.particles),
        "image_shape": list(noisy.shape),
        "sampling_A": list(sampling),
        "label_fraction": round(float(mask.mean()), 4),
        "timings_s": timings,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return hrtem_layers(noisy, inst, noisy_img.grid, scene)


def hrtem_layers(
    image, labels, grid, scene=None, prefix: str = "HRTEM"
) -> list[tuple[Any, dict, str]]:
    """LayerDataTuples of a simulated image, its labels and (hidden) projected atoms.

    Every layer carries ``scale`` in Å and ``units`` ``("Å", "Å")`` from
    ``grid`` (a :class:`~napari_interfaces.core.geometry.Grid`, axes
    ``yx``) and ``metadata["pixel_size"]`` (Å), so the Segment dock and
    writers see the physical pixel size. Atoms are projected to 2D (y, x)
    so they add no z slider.
    """
    dy, dx = grid.spacing
    common = {
        "scale": (dy, dx),
        "units": ("Å", "Å"),
        "axis_labels": ("y", "x"),
        "metadata": {"pixel_size": float(dx), "pixel_unit": "Å", "grid": grid.to_dict()},
    }
    out = [
        (image, {"name": f"{prefix} image", "colormap": "gray", **common}, "image"),
        (labels, {"name": f"{prefix} labels", "opacity": 0.4, **_copy(common)}, "labels"),
    ]
    if scene is not None:
        pts = np.asarray(scene.atoms.positions)[:, 1::-1]  # (y, x) in Å: world coordinates
        colors = np.where(
            scene.atoms.numbers[:, None] == 6, [[0.5, 0.5, 0.5, 1]], [[1, 0.8, 0, 1]]
        )
        meta = _copy(common)["metadata"]
        out.append(
            (
                pts,
                {
                    "name": "atoms",
                    "size": 1.0,
                    "face_color": colors,
                    "visible": False,
                    "units": ("Å", "Å"),
                    "axis_labels": ("y", "x"),
                    "metadata": meta,
                },
                "points",
            )
        )
    return out


def _copy(d: dict) -> dict:
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
