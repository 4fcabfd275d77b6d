"""U-Net segmentation: held-out accuracy, robustness, training and inference speed.

    python benchmarks/bench_segment.py [--robustness] [--n-per-condition 16] [--finetune-curve]

* held-out F1 / IoU of the shipped default model on
  ``benchmarks/_work/default_unet/test.zarr`` (made by
  ``scripts/train_default_unet.py`` with seed 2002, never seen in training);
* inference time of a 4096² micrograph (tiled, at the model's pixel size),
  float32 and bfloat16, 1 and 2 torch threads;
* training throughput (images/s) from the model's metadata;
* ``--robustness``: F1 across defocus, dose and substrate thickness, one
  parameter changed at a time (the others drawn from the training spec),
  including values outside the training ranges;
* ``--finetune-curve``: F1 on a shifted domain (100-150 Å carbon, 40-120
  e/Å²) after fine-tuning on 0-16 of its images.
Prints Markdown.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
WORK = REPO / "benchmarks" / "_work"


def inference_speed(model) -> list[tuple[str, int, float]]:
    import numpy as np
    import torch

    from napari_interfaces.segment.inference import segment_image

    img = np.random.default_rng(0).normal(1, 0.2, (4096, 4096)).astype(np.float32)
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for prec in ("bfloat16", "float32"):
            segment_image(img[:1024, :1024], model, precision=prec)  # warm up
            t0 = time.perf_counter()
            segment_image(img, model, precision=prec)
            rows.append((prec, threads, time.perf_counter() - t0))
    return rows


def robustness(model, n: int) -> list[tuple[str, str, float, float]]:
    from napari_interfaces.segment.inference import evaluate_store
    from napari_interfaces.simulate.database import generate_database
    from napari_interfaces.simulate.spec import load_spec

    base = load_spec("hrtem_default").to_dict()
    conditions = [
        ("defocus (Å)", ("microscope", "defocus"), [-800, -300, 0, 300, 800]),
        ("dose (e/Å²)", ("detector", "dose"), [30, 100, 400, 1200, 5000]),
        ("substrate (Å)", ("structure", "substrate_thickness"), [10, 30, 80, 150]),
    ]
    train_ranges = {
        "defocus (Å)": (-500, 500),
        "dose (e/Å²)": (100, 1200),
        "substrate (Å)": (20, 80),
    }
    rows = []
    for name, (group, key), values in conditions:
        for v in values:
            spec = copy.deepcopy(base)
            spec["parameters"][group][key] = v
            spec["name"] = f"robust_{key}_{v}"
            out = WORK / "robustness" / f"{key}_{v}.zarr"
            shutil.rmtree(out, ignore_errors=True)
            generate_database(spec, out, n=n, seed=7000, workers=2)
            s = evaluate_store(model, out)
            lo, hi = train_ranges[name]
            rows.append(
                (name, f"{v}{'' if lo <= v <= hi else ' (outside training)'}", s["f1"], s["iou"])
            )
            print(f"  {name} = {v}: F1 {s['f1']:.3f}", file=sys.stderr, flush=True)
    return rows


def finetune_curve(model, counts=(0, 1, 2, 4, 8, 16), n_test: int = 32, epochs: int = 5):
    """F1 on a shifted domain (thick carbon, low dose) vs corrected images used to fine-tune."""
    from napari_interfaces.segment.finetune import finetune
    from napari_interfaces.segment.inference import evaluate_store
    from napari_interfaces.simulate.database import generate_database, read_sample
    from napari_interfaces.simulate.spec import load_spec

    spec = load_spec("hrtem_default").to_dict()
    spec["name"] = "shifted_thick_lowdose"
    spec["parameters"]["structure"]["substrate_thickness"] = {"uniform": [100, 150]}
    spec["parameters"]["detector"]["dose"] = {"uniform": [40, 120]}
    tune_db, test_db = WORK / "shift_tune.zarr", WORK / "shift_test.zarr"
    for db in (tune_db, test_db):  # never resume a store made by older code
        shutil.rmtree(db, ignore_errors=True)
    generate_database(spec, tune_db, n=max(counts), seed=8001, workers=2)
    generate_database(spec, test_db, n=n_test, seed=8002, workers=2)
    rows = []
    for k in counts:
        if k == 0:
            m = model
        else:
            pairs = [read_sample(tune_db, i)[:2] for i in range(k)]
            m, _ = finetune(
                model,
                pairs,
                pixel_size=0.2,
                epochs=epochs,
                freeze_encoder=True,
                crop=192,
                out=WORK / f"shift_ft_{k}.pt",
            )
        s = evaluate_store(m, test_db)
        rows.append((k, s["f1"], s["iou"]))
        print(f"  fine-tuned on {k}: F1 {s['f1']:.3f}", file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    import torch

    from napari_interfaces.segment.inference import evaluate_store
    from napari_interfaces.segment.models import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robustness", action="store_true")
    ap.add_argument("--n-per-condition", type=int, default=16)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--finetune-curve", action="store_true")
    ap.add_argument("--no-accuracy", action="store_true")
    args = ap.parse_args(argv)
    model = load_model("default", device="cpu")
    meta = model.metadata
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared); "
        f"torch {torch.__version__}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n"
    )
    print(
        f"model: {meta.get('description')}, width {meta['architecture']['width']}, "
        f"sha256 {meta['sha256'][:12]}…\n"
    )
    test = WORK / "default_unet" / "test.zarr"
    print("| set | F1 | IoU | n |")
    print("|---|---:|---:|---:|")
    v = meta.get("metrics", {})
    n_val = meta.get("training", {}).get("data", {}).get("n_val", "?")
    if v:
        print(
            f"| validation (seed 1001, last 10 %) | {v.get('f1', float('nan')):.3f} | "
            f"{v.get('iou', float('nan')):.3f} | {n_val} |"
        )
    if test.exists() and not args.no_accuracy:
        s = evaluate_store(model, test)
        print(f"| held-out test (seed 2002) | {s['f1']:.3f} | {s['iou']:.3f} | {s['n']} |")
        print(
            f"\nper-image F1: mean {s['per_image_f1_mean']:.3f}, min {s['per_image_f1_min']:.3f}"
        )
    tr = meta.get("training", {})
    if tr:
        print(
            f"\ntraining: {tr.get('images_per_second')} images/s "
            f"({tr['settings']['crop']}² crops, batch {tr['settings']['batch_size']}, "
            f"{tr['settings']['threads']} thread), {tr.get('seconds')} s for "
            f"{len(tr.get('history', []))} epochs"
        )
    if not args.no_speed:
        print("\n| 4096² inference | torch threads | seconds |")
        print("|---|---:|---:|")
        for prec, th, sec in inference_speed(model):
            print(f"| {prec} | {th} | {sec:.1f} |")
    if args.robustness:
        rows = robustness(model, args.n_per_condition)
        print("\n| varied parameter | value | F1 | IoU |")
        print("|---|---|---:|---:|")
        for name, val, f1, iou in rows:
            print(f"| {name} | {val} | {f1:.3f} | {iou:.3f} |")
    if args.finetune_curve:
        print("\n| corrected images used for fine-tuning | F1 | IoU |")
        print("|---:|---:|---:|")
        for k, f1, iou in finetune_curve(model):
            print(f"| {k} | {f1:.3f} | {iou:.3f} |")
    print(json.dumps({"ok": True}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
