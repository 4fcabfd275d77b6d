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
  e/Å²) after fine-tuning on 0-16 of its images;
* ``--pixel-size [--old OLD.pt] [--new NEW.pt]``: pixel-size robustness. The
  held-out test images (0.2 Å/px) are rendered at 0.1 (cubic upsampling),
  0.2, 0.4 and 0.8 Å/px (2×2 / 4×4 binning, the truth by majority) and
  segmented with the pixel size given right, wrong by ×0.5, ×0.7, ×1.4, ×2,
  or not given (old behaviour: not rescaled; new: estimated from the
  lattice fringes); pooled pixel F1 per cell, old model vs new;
* ``--instances``: particles on ``instances.zarr`` (2-3 particles per
  image, 0.5-3 Å gaps, truth instances = connected components of the true
  mask): instance F1 at IoU 0.5 with and without the watershed split,
  equivalent-diameter error of matched particles, and the uncertainty's
  usefulness (pixel F1 when the least certain 10 % of the particles are
  corrected by the truth, vs 10 % chosen at random).
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


def inference_speed(model, uncertainty: bool = False) -> list[tuple[str, int, float, str]]:
    """4096² at the model's pixel size: seconds per precision and thread count (+ load)."""
    import numpy as np
    import torch

    from napari_interfaces.segment.inference import segment_image

    img = np.random.default_rng(0).normal(1, 0.2, (4096, 4096)).astype(np.float32)
    ps = model.pixel_size
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for prec in ("bfloat16", "float32"):
            segment_image(img[:1024, :1024], model, pixel_size=ps, precision=prec, particles=False)
            load = f"{os.getloadavg()[0]:.1f}"
            t0 = time.perf_counter()
            segment_image(
                img, model, pixel_size=ps, precision=prec, uncertainty=uncertainty, particles=False
            )
            rows.append((prec, threads, time.perf_counter() - t0, load))
    return rows


def _render(image, truth, factor: float):
    """The 0.2 Å/px sample at ``0.2 * factor`` Å/px: binning (factor 2, 4) or cubic zoom."""
    import numpy as np
    from scipy import ndimage

    if factor == 1:
        return image, truth
    if factor < 1:
        z = 1 / factor
        img = ndimage.zoom(image, z, order=3)
        lab = ndimage.zoom(truth, z, order=0)
        return img, lab
    b = int(factor)
    h, w = (s // b * b for s in image.shape)
    img = image[:h, :w].reshape(h // b, b, w // b, b).mean((1, 3))
    lab = (truth[:h, :w] > 0).reshape(h // b, b, w // b, b).mean((1, 3)) >= 0.5
    return img, lab.astype(np.uint8)


WRONG = (0.5, 0.7, 1.0, 1.4, 2.0)
RENDER = (0.1, 0.2, 0.4, 0.8)


def pixel_size_robustness(models: dict, n: int = 32) -> list[tuple]:
    """Pooled pixel F1 per (model, true pixel size, given pixel size)."""
    import numpy as np

    from napari_interfaces.segment.inference import segment_image
    from napari_interfaces.simulate.database import read_sample

    test = WORK / "default_unet" / "test.zarr"
    samples = [read_sample(test, i)[:2] for i in range(n)]
    rows = []
    for name, model in models.items():
        kw = {"particles": False}
        if isinstance(model, tuple):
            model, kw = model[0], {"particles": False, **model[1]}
        for ps in RENDER:
            rendered = [
                _render(np.asarray(a, np.float32), np.asarray(b), ps / 0.2) for a, b in samples
            ]
            cells = []
            for given in [*WRONG, "none (not rescaled)", "none (estimated)"]:
                tp = fp = fn = 0
                used = []
                for img, lab in rendered:
                    if given == "none (not rescaled)":
                        r = segment_image(img, model, None, estimate_pixel_size=False, **kw)
                    elif given == "none (estimated)":
                        r = segment_image(img, model, None, estimate_pixel_size=True, **kw)
                    else:
                        r = segment_image(img, model, pixel_size=ps * given, **kw)
                    used.append(r.pixel_size if r.pixel_size_source != "assumed" else np.nan)
                    pred, t = r.labels > 0, lab > 0
                    tp += int((pred & t).sum())
                    fp += int((pred & ~t).sum())
                    fn += int((~pred & t).sum())
                f1 = 2 * tp / max(1, 2 * tp + fp + fn)
                cells.append((given, f1, used))
                print(
                    f"  {name} {ps} Å/px given {given}: F1 {f1:.3f}", file=sys.stderr, flush=True
                )
            rows.append((name, ps, cells))
    return rows


def estimate_accuracy(n: int = 32) -> list[tuple[float, float, float, float]]:
    """Lattice-fringe pixel-size estimate on the rendered test images."""
    import numpy as np

    from napari_interfaces.segment.scale import estimate_pixel_size
    from napari_interfaces.simulate.database import read_sample

    test = WORK / "default_unet" / "test.zarr"
    rows = []
    for ps in RENDER:
        est = []
        for i in range(n):
            a, b = read_sample(test, i)[:2]
            img, _ = _render(np.asarray(a, np.float32), np.asarray(b), ps / 0.2)
            e = estimate_pixel_size(img).pixel_size
            est.append(np.nan if e is None else e)
        est = np.asarray(est)
        ok = np.isfinite(est)
        within = np.abs(np.log(est[ok] / ps)) < np.log(1.3)
        rows.append(
            (
                ps,
                ok.mean(),
                float(np.median(est[ok])) if ok.any() else np.nan,
                within.sum() / len(est),
            )
        )
    return rows


def instances_store(n: int = 48) -> Path:
    """``instances.zarr``: the default spec with 2-3 particles 18-28 Å, 0.5-3 Å apart, 512²."""
    from napari_interfaces.simulate.database import generate_database
    from napari_interfaces.simulate.spec import load_spec

    spec = load_spec("hrtem_default").to_dict()
    spec["name"] = "instances_touching"
    spec["output"]["crop"] = 512
    spec["parameters"]["structure"]["n_particles"] = {"randint": [2, 3]}
    spec["parameters"]["structure"]["particle_diameter"] = {"uniform": [18, 28]}
    spec["parameters"]["structure"]["min_gap"] = {"uniform": [0.5, 3.0]}
    out = WORK / "instances.zarr"
    generate_database(spec, out, n=n, seed=9001, scheduler="inline", device="numpy")
    return out


def instances(model, n: int = 48, split_depth: float = 2.0) -> dict:
    """Instance F1 (IoU 0.5), diameter error and uncertainty usefulness on instances.zarr."""
    import numpy as np
    from scipy import ndimage

    from napari_interfaces.segment.inference import segment_image
    from napari_interfaces.segment.particles import (
        match_instances,
        measure_particles,
        split_particles,
    )
    from napari_interfaces.segment.uncertainty import correction_gain, particle_uncertainty
    from napari_interfaces.simulate.database import completed_indices, read_sample

    store = instances_store(n)
    idx = completed_indices(store)[:n]
    counts = {"split": [0, 0, 0], "no split": [0, 0, 0]}
    derr, dbias, items, items_dis, items_mean = [], [], [], [], []
    t_unc = t_plain = 0.0
    n_true = 0
    for i in idx:
        image, truth, meta = read_sample(store, i)
        ps = 0.2
        t0 = time.perf_counter()
        segment_image(image, model, pixel_size=ps, particles=False)
        t_plain += time.perf_counter() - t0
        r = segment_image(image, model, pixel_size=ps, uncertainty=True, split_depth=split_depth)
        t_unc += r.seconds["network"]
        true_inst, nt = ndimage.label(truth > 0)
        n_true += nt
        _, t_table = measure_particles(true_inst, ps, split=False)
        for key, inst in (
            ("split", r.instances),
            # same hole filling and minimum area, one instance per connected component
            ("no split", split_particles(r.labels > 0, ps, split_depth=1e9)),
        ):
            m = match_instances(inst, true_inst, 0.5)
            c = counts[key]
            c[0] += m["tp"]
            c[1] += m["fp"]
            c[2] += m["fn"]
            if key == "split":
                dp = r.particles["equivalent_diameter_nm"]
                dt = t_table["equivalent_diameter_nm"]
                for pid, tid, _ in m["pairs"]:
                    e = (dp[pid - 1] - dt[tid - 1]) / dt[tid - 1]
                    derr.append(abs(e))
                    dbias.append(e)
        items.append((r.instances, truth, r.particles["uncertain_area_nm2"]))
        items_mean.append((r.instances, truth, r.particles["uncertainty"]))
        items_dis.append(
            (r.instances, truth, particle_uncertainty(r.instances, r.disagreement, reduce="sum"))
        )
    f1 = {k: 2 * c[0] / max(1, 2 * c[0] + c[1] + c[2]) for k, c in counts.items()}
    return dict(
        n_images=len(idx),
        n_true=n_true,
        counts=counts,
        f1=f1,
        diameter_abs_error_mean=float(np.mean(derr)) if derr else float("nan"),
        diameter_abs_error_median=float(np.median(derr)) if derr else float("nan"),
        diameter_bias=float(np.mean(dbias)) if dbias else float("nan"),
        gain_entropy=correction_gain(items, 0.1),
        gain_entropy_mean=correction_gain(items_mean, 0.1),
        gain_disagreement=correction_gain(items_dis, 0.1),
        gain_entropy_20=correction_gain(items, 0.2),
        seconds_plain=t_plain,
        seconds_tta=t_unc,
    )


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
    ap.add_argument("--pixel-size", action="store_true", help="pixel-size robustness table")
    ap.add_argument("--old", default=None, help="old model for --pixel-size")
    ap.add_argument("--new", default="default", help="new model for --pixel-size")
    ap.add_argument("--n", type=int, default=32, help="images per cell (--pixel-size)")
    ap.add_argument(
        "--multiscale", action="store_true", help="--pixel-size: add the new model, multi-scale"
    )
    ap.add_argument("--instances", action="store_true", help="particles + uncertainty")
    ap.add_argument("--uncertainty-speed", action="store_true", help="4096² with --uncertainty")
    ap.add_argument("--model", default="default", help="model for the other sections")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.model, device="cpu")
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
        print("\n| 4096² inference | torch threads | seconds | load (1 min) |")
        print("|---|---:|---:|---:|")
        for prec, th, sec, load in inference_speed(model):
            print(f"| {prec} | {th} | {sec:.1f} | {load} |")
    if args.uncertainty_speed:
        print("\n| 4096² with --uncertainty (8 transforms) | torch threads | seconds | load |")
        print("|---|---:|---:|---:|")
        for prec, th, sec, load in inference_speed(model, uncertainty=True):
            print(f"| {prec} | {th} | {sec:.1f} | {load} |")
    if args.pixel_size:
        models = {}
        if args.old:
            models["old"] = load_model(args.old, device="cpu")
        models["new"] = load_model(args.new, device="cpu")
        if args.multiscale:
            from napari_interfaces.segment.inference import MULTISCALE

            models["new, multi-scale"] = (models["new"], {"scales": MULTISCALE})
            if args.old is None:
                del models["new"]
        print("\n| fringe estimate | rendered at (Å/px) | estimated | median | within 30 % |")
        print("|---|---:|---:|---:|---:|")
        for ps, frac, med, within in estimate_accuracy(args.n) if args.old else []:
            print(f"| | {ps} | {frac:.0%} | {med:.3f} | {within:.0%} |")
        cols = [f"×{w:g}" for w in WRONG] + ["none, not rescaled", "none, estimated"]
        print("\n| model | true Å/px | " + " | ".join(cols) + " |")
        print("|---|---:|" + "---:|" * len(cols))
        for name, ps, cells in pixel_size_robustness(models, args.n):
            print(f"| {name} | {ps} | " + " | ".join(f"{f1:.3f}" for _, f1, _ in cells) + " |")
    if args.instances:
        r = instances(model)
        print(f"\ninstances: {r['n_images']} images, {r['n_true']} true particles")
        print("\n| particles | TP | FP | FN | instance F1 (IoU 0.5) |")
        print("|---|---:|---:|---:|---:|")
        for k, c in r["counts"].items():
            print(f"| {k} | {c[0]} | {c[1]} | {c[2]} | {r['f1'][k]:.3f} |")
        print(
            f"\nequivalent diameter of matched particles: mean |error| "
            f"{r['diameter_abs_error_mean']:.1%}, median {r['diameter_abs_error_median']:.1%}, "
            f"bias {r['diameter_bias']:+.1%}"
        )
        print(
            "\n| correct the least certain particles | ranked by | pixel F1 before | after | as many at random |"
        )
        print("|---|---|---:|---:|---:|")
        for key, g in (
            ("summed entropy (default)", r["gain_entropy"]),
            ("mean entropy", r["gain_entropy_mean"]),
            ("summed disagreement", r["gain_disagreement"]),
            ("summed entropy, 20 %", r["gain_entropy_20"]),
        ):
            print(
                f"| {g['n_corrected']} of {g['n']} | {key} | {g['f1_before']:.4f} | "
                f"{g['f1_uncertain']:.4f} | {g['f1_random']:.4f} |"
            )
        print(
            f"\nnetwork time: {r['seconds_plain']:.1f} s plain, {r['seconds_tta']:.1f} s with "
            f"8-fold TTA ({r['n_images']} images of 512²)"
        )
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
