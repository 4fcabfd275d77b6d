"""Cluster demo: synthetic order/disorder micrograph -> chip communities -> labels.

Run by ``napari-interfaces demo`` (see :mod:`napari_interfaces.demo`): makes a
seeded 768 x 768 crystalline / damaged / amorphous micrograph, segments it
with FFT features (64-px chips, stride 32, merged to 3 communities, boundary
refinement) and writes ``image.tif``, ``truth.tif``, ``labels.tif``,
``communities.csv``, ``summary.json`` (settings, timings, ARI/mIoU against
the truth) and ``cluster.png`` into ``out_dir``; returns napari layers.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = ["run_demo", "scores", "save_figure"]


def scores(labels: np.ndarray, truth: np.ndarray) -> dict:
    """ARI, mIoU and pixel accuracy after Hungarian matching of labels to truth."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics import adjusted_rand_score

    lab = np.asarray(labels).ravel().astype(np.int64)
    tru = np.asarray(truth).ravel().astype(np.int64)
    _, li = np.unique(lab, return_inverse=True)
    _, ti = np.unique(tru, return_inverse=True)
    m = np.zeros((li.max() + 1, ti.max() + 1))
    np.add.at(m, (li, ti), 1)
    r, c = linear_sum_assignment(-m)
    inter = m[r, c]
    union = m.sum(1)[r] + m.sum(0)[c] - inter
    ious = np.zeros(ti.max() + 1)
    ious[c] = inter / np.maximum(union, 1)
    return {
        "ari": float(adjusted_rand_score(tru, lab)),
        "miou": float(ious.mean()),
        "accuracy": float(inter.sum() / lab.size),
        "n_communities": int(li.max() + 1),
    }


def save_figure(path, image, labels, truth=None, title: str = "") -> None:
    """PNG: image, communities over it, and the truth if given (matplotlib Agg)."""
    from matplotlib.figure import Figure

    n = 3 if truth is not None else 2
    fig = Figure(figsize=(4 * n, 4.2), dpi=100)
    img = image if image.ndim == 2 else image[..., 0]
    axes = [fig.add_subplot(1, n, i + 1) for i in range(n)]
    axes[0].imshow(img, cmap="gray")
    axes[0].set_title("image")
    axes[1].imshow(img, cmap="gray")
    axes[1].imshow(
        np.ma.masked_equal(labels, 0),
        cmap="tab10",
        vmin=1,
        vmax=10,
        alpha=0.45,
        interpolation="nearest",
    )
    axes[1].set_title(title or "chip communities")
    if truth is not None:
        axes[2].imshow(truth, cmap="tab10", vmin=1, vmax=10, interpolation="nearest")
        axes[2].set_title("ground truth")
    for a in axes:
        a.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)


def run_demo(out_dir: str | Path, progress: Progress | None = None) -> list:
    """Run the demo into ``out_dir`` (the caller makes it atomic); return napari layer tuples."""
    from ..io.tiff import write_tiff
    from .pipeline import segment_by_communities
    from .synthetic import CLASS_NAMES, order_disorder_micrograph

    progress = as_progress(progress)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    image, truth = order_disorder_micrograph((768, 768), n_regions=10, seed=0)
    res = segment_by_communities(
        image,
        chip=64,
        stride=32,
        features="fft",
        merge_to=3,
        seed=0,
        refine=True,
        progress=progress,
    )
    sc = scores(res.labels, truth)
    write_tiff(out / "image.tif", image)
    write_tiff(out / "truth.tif", truth.astype(np.uint16))
    write_tiff(out / "labels.tif", res.labels.astype(np.uint16))
    with open(out / "communities.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "area_fraction", "chips", "mean_intensity", "representative_chip"])
        for row in res.table:
            w.writerow(
                [
                    row["id"],
                    row["area_fraction"],
                    row["chips"],
                    row["mean_intensity"][0],
                    row["representative_chip"],
                ]
            )
    summary = res.summary()
    summary["scores_vs_truth"] = sc
    summary["truth_classes"] = CLASS_NAMES
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    save_figure(
        out / "cluster.png", image, res.labels, truth, title=f"communities (ARI {sc['ari']:.2f})"
    )
    return [
        (image, {"name": "order/disorder micrograph", "colormap": "gray"}, "image"),
        (truth, {"name": "truth (crystalline/damaged/amorphous)", "visible": False}, "labels"),
        (res.labels, {"name": "chip communities", "opacity": 0.5}, "labels"),
    ]
