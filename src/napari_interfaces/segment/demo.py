"""Segmentation demo: simulated Au nanoparticle micrograph -> shipped U-Net -> labels.

Run by ``napari-interfaces demo`` (see :mod:`napari_interfaces.demo`): makes
a 384² micrograph at 0.2 Å/px with the multislice sampler (a held-out seed of
the default model's own database spec, two particles), segments it with the
shipped default model (tiled inference) and writes ``image.tif``,
``labels.tif`` (prediction), ``truth.tif`` (labels from the particle-only
exit wave), ``segment.png`` (image, prediction, truth) and ``summary.json``
(F1 and IoU against the truth, timings) into ``out_dir``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = ["DEMO_SEED", "run_demo"]

#: Seed of the demo micrograph (not one of the training or test seeds).
DEMO_SEED = 31337


def _figure(path: Path, image, pred, truth, pixel_size: float, title: str) -> None:
    """The micrograph, the prediction over it and the truth over it, side by side."""
    from ..simulate.demo import overlay_figure

    panels = [
        (None, "simulated micrograph"),
        (pred, "U-Net prediction"),
        (truth, "ground truth (exit wave)"),
    ]
    overlay_figure(
        path, image, panels, (pixel_size, pixel_size), title=title, figsize=(11, 4), dpi=100
    )


def run_demo(out_dir: str | Path, progress: Progress | None = None) -> list[tuple[Any, dict, str]]:
    """Simulate, segment with the default model, write results; return napari layers."""
    from ..io.micrograph import write_labels_tiff
    from ..simulate.database import multislice_sample
    from ..simulate.spec import load_spec, sample_rng
    from .inference import segment_image
    from .metrics import scores
    from .models import load_model

    progress = as_progress(progress)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = load_spec("hrtem_default")
    rng = sample_rng(DEMO_SEED, 0)
    params = spec.draw(rng)
    params["structure"]["n_particles"] = 2
    params["structure"]["particle_diameter"] = [26.0, 34.0]
    output = dict(spec.output, crop=384)
    progress.start(None, "simulating micrograph")
    t0 = time.perf_counter()
    image, truth, info = multislice_sample(params, output, rng)
    t_sim = time.perf_counter() - t0
    model = load_model("default", device="cpu")
    t1 = time.perf_counter()
    pred = segment_image(
        image,
        model,
        pixel_size=spec.pixel_size,
        tile=256,
        overlap=32,
        particles=False,
        progress=progress,
    ).labels
    t_seg = time.perf_counter() - t1
    s = scores(pred, truth)
    ps = spec.pixel_size
    from ..io.tiff import write_tiff

    write_tiff(out_dir / "image.tif", image.astype(np.float32), pixel_size=ps, unit="Å")
    write_labels_tiff(out_dir / "labels.tif", pred, ps)
    write_labels_tiff(out_dir / "truth.tif", truth, ps)
    title = (
        f"default U-Net on a held-out simulated micrograph: F1 {s['f1']:.3f}, IoU {s['iou']:.3f}"
    )
    _figure(out_dir / "segment.png", image, pred, truth, ps, title)
    summary = {
        "model": model.metadata.get("description"),
        "model_sha256": model.metadata.get("sha256"),
        "pixel_size_A": ps,
        "shape": list(image.shape),
        "seed": DEMO_SEED,
        "parameters": params,
        "f1": round(s["f1"], 4),
        "iou": round(s["iou"], 4),
        "seconds": {"simulate": round(t_sim, 2), "segment": round(t_seg, 2)},
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    scale = (ps, ps)
    return [
        (
            image,
            {
                "name": "segment: micrograph",
                "scale": scale,
                "colormap": "gray",
                "metadata": {"pixel_size": ps},
            },
            "image",
        ),
        (pred, {"name": "segment: U-Net labels", "scale": scale, "opacity": 0.5}, "labels"),
        (
            truth,
            {"name": "segment: ground truth", "scale": scale, "opacity": 0.3, "visible": False},
            "labels",
        ),
    ]
