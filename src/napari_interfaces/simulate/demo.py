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
from .workflow import HRTEMParams, StructureParams

__all__ = [
    "DEMO_HRTEM",
    "DEMO_STRUCTURE",
    "hrtem_layers",
    "overlay_figure",
    "run_demo",
    "save_figure",
]

#: The demo's structure (small enough for a few seconds on 2 cores).
DEMO_STRUCTURE = StructureParams(
    extent=(48.0, 48.0),
    substrate_thickness=20.0,
    particle_diameter=(32.0,),
    orientation="1 1 0",
    seed=5,
)
#: The demo's microscope and detector.
DEMO_HRTEM = HRTEMParams(
    energy_kv=200.0,
    sampling=0.125,
    slice_thickness=2.0,
    defocus=-60.0,
    cs=-2e5,
    focal_spread=20.0,
    aperture_mrad=25.0,
    dose=2000.0,
    device="cpu",
    seed=0,
)


def overlay_figure(
    path, image, panels, sampling, *, title: str = "", figsize=(8, 4), dpi: int = 110
) -> None:
    """PNG of ``image`` in side-by-side panels, each with its labels drawn over it.

    Parameters
    ----------
    path : path
        The PNG file.
    image : (ny, nx) array
    panels : sequence of (labels or None, str)
        One panel each: the labels drawn over the image (0 transparent), and its title.
    sampling : (float, float)
        Å per pixel along x and y (the axes are in nm).
    title : str
        The figure's title (none when empty).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    ny, nx = image.shape
    ext = [0, nx * sampling[0] / 10, ny * sampling[1] / 10, 0]  # nm
    fig = Figure(figsize=figsize, dpi=dpi)
    for k, (labels, name) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        ax.imshow(image, cmap="gray", extent=ext)
        if labels is not None:
            masked = np.ma.masked_equal(labels, 0)
            ax.imshow(masked, cmap="autumn", alpha=0.45, extent=ext, interpolation="nearest")
        ax.set_title(name)
        ax.set_xlabel("x (nm)")
        if k == 0:
            ax.set_ylabel("y (nm)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)


def save_figure(path, image, labels, sampling, title: str = "") -> None:
    """PNG of an image beside its labels (matplotlib, Agg)."""
    panels = [
        (None, title or "simulated HRTEM image"),
        (labels, "labels (particle-only exit wave)"),
    ]
    overlay_figure(path, image, panels, sampling)


def run_demo(out_dir: str | Path, progress: Progress | None = None) -> list[tuple[Any, dict, str]]:
    """Run the HRTEM demo (the one composition, :func:`.workflow.simulate_hrtem`); returns LayerDataTuples."""
    from ..io.tiff import write_tiff
    from .workflow import build_structure, image, simulate_hrtem

    progress = as_progress(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    scene = build_structure(DEMO_STRUCTURE)
    scene.write(out / "scene.xyz")
    t_struct = time.perf_counter() - t0
    result = simulate_hrtem(scene, DEMO_HRTEM, rng=1, progress=progress)
    noisy_img, inst, mask = result.image, result.instances, result.mask
    clean = image(result.simulation, DEMO_HRTEM.replace(dose=None), progress=progress).data
    noisy = noisy_img.data
    sampling = result.simulation.simulator.exit_waves().sampling
    dy, dx = noisy_img.grid.spacing
    write_tiff(out / "image.tif", noisy, pixel_size=(dy, dx))
    write_tiff(out / "image_noise_free.tif", clean, pixel_size=(dy, dx))
    write_tiff(out / "labels.tif", inst.astype(np.int32), pixel_size=(dy, dx))
    d_nm = DEMO_STRUCTURE.particle_diameter[0] / 10
    save_figure(out / "hrtem.png", noisy, inst, sampling,
                f"Au {d_nm:g} nm on a-C, 200 kV, {DEMO_HRTEM.dose:g} e/Å²")  # fmt: skip
    timings = {
        k: round(v, 3)
        for k, v in result.simulation.simulator.exit_waves().timings.items()
        if isinstance(v, float)
    }
    timings["structure"] = round(t_struct, 3)
    summary = {
        "params": {"structure": DEMO_STRUCTURE.to_dict(), "hrtem": DEMO_HRTEM.to_dict()},
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
