"""Database size and diversity: how much, and how varied, simulated data a U-Net needs.

    python benchmarks/bench_database_study.py [--steps 600] [--sizes 60 120 240 480 960]

A small version of the study in Rangel DaCosta et al. (npj Comput. Mater.
2024). Every model is the shipped architecture (U-Net, ResNet-18 block
layout, width 16) trained with the same optimisation budget (``--steps``
batches of 8 random 192² crops, AdamW 1e-3 cosine, CE + Dice, seed 0), so
only the data differ; each is scored on the same held-out test database:
the full ``hrtem_default`` spec with seed 2002 (96 samples, the set the
shipped model is scored on).

* **Size**: the first N samples of the full-diversity training database
  (``hrtem_default``, seed 1001, as made by ``scripts/train_default_unet.py``).
* **Diversity** (N = 240 each): the same spec with the imaging conditions
  fixed (defocus -100 Å, Cs 0, no astigmatism, focal spread 40 Å, dose
  600 e/Å²), with the structures fixed (30 Å spheres on 50 Å of carbon; only
  the orientation and position vary), and with both fixed.

Databases are made (or resumed) under ``benchmarks/_work/study/``. Prints
Markdown.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SPEC = "hrtem_default"
TRAIN_SEED, TEST_SEED = 1001, 2002
N_TEST = 96

FIXED_IMAGING = {
    "defocus": -100.0,
    "cs": 0.0,
    "aberrations": {"C12": 0.0, "phi12": 0.0},
    "focal_spread": 40.0,
}
FIXED_DOSE = 600.0
FIXED_STRUCTURE = {"shape": "sphere", "particle_diameter": 30.0, "substrate_thickness": 50.0}


def variant(kind: str) -> dict:
    """The ``hrtem_default`` spec with imaging and/or structure fixed."""
    from napari_interfaces.simulate.spec import load_spec

    spec = copy.deepcopy(load_spec(SPEC).to_dict())
    p = spec["parameters"]
    if kind in ("imaging", "both"):
        p["microscope"].update(copy.deepcopy(FIXED_IMAGING))
        p["detector"]["dose"] = FIXED_DOSE
    if kind in ("structure", "both"):
        p["structure"].update(FIXED_STRUCTURE)
    spec["name"] = f"{SPEC}_fixed_{kind}"
    return spec


def database(spec, path: Path, n: int, seed: int) -> Path:
    from napari_interfaces.simulate.database import generate_database

    r = generate_database(spec, path, n=n, seed=seed, workers=2)
    print(f"  {path.name}: {r.computed} made, {r.skipped} reused", flush=True)
    return path


def fit_and_score(store: Path, n: int, steps: int, test: Path, out: Path) -> dict:
    from napari_interfaces.segment.inference import evaluate_store
    from napari_interfaces.segment.models import load_model
    from napari_interfaces.segment.train import TrainConfig, train

    n_train = n - max(1, round(0.1 * n))
    epochs = max(1, math.ceil(steps * 8 / n_train))
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=8,
        lr=1e-3,
        crop=192,
        val_fraction=0.1,
        patience=epochs,
        width=16,
        max_samples=n,
        deterministic=True,
        seed=0,
        threads=int(os.environ.get("STUDY_THREADS", "2")),
        device="cpu",
    )
    t0 = time.perf_counter()
    train(store, out, cfg, resume=False)
    seconds = time.perf_counter() - t0
    scores = evaluate_store(load_model(out), test)
    return dict(scores, epochs=epochs, seconds=round(seconds, 1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--sizes", type=int, nargs="+", default=[60, 120, 240, 480, 960])
    ap.add_argument("--diversity-n", type=int, default=240)
    ap.add_argument("--no-diversity", action="store_true")
    args = ap.parse_args(argv)
    from napari_interfaces.simulate.spec import load_spec

    work = REPO / "benchmarks" / "_work" / "study"
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {args.steps} steps per model\n",
        flush=True,
    )
    full = load_spec(SPEC).to_dict()
    test = database(full, work / "test.zarr", N_TEST, TEST_SEED)
    train_full = database(full, work / "train_full.zarr", max(args.sizes), TRAIN_SEED)
    rows = []
    for n in args.sizes:
        r = fit_and_score(train_full, n, args.steps, test, work / f"size_{n}.pt")
        rows.append(("size", f"{n} samples, full diversity", r))
        print(f"  size {n}: {json.dumps(r)}", flush=True)
    if not args.no_diversity:
        n = args.diversity_n
        for kind, label in (
            ("imaging", "imaging fixed"),
            ("structure", "structures fixed"),
            ("both", "imaging and structures fixed"),
        ):
            store = database(variant(kind), work / f"train_fixed_{kind}.zarr", n, TRAIN_SEED)
            r = fit_and_score(store, n, args.steps, test, work / f"fixed_{kind}.pt")
            rows.append(("diversity", f"{n} samples, {label}", r))
            print(f"  {kind}: {json.dumps(r)}", flush=True)
    print("\n| study | training data | F1 | IoU | per-image F1 (mean / min) | epochs |")
    print("|---|---|---:|---:|---:|---:|")
    for study, label, r in rows:
        print(
            f"| {study} | {label} | {r['f1']:.3f} | {r['iou']:.3f} | "
            f"{r['per_image_f1_mean']:.3f} / {r['per_image_f1_min']:.3f} | {r['epochs']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
