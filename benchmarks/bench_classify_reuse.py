"""Paint to segment (issue 24): time per 1024² image and reuse on other images; prints tables.

Two measurements the simulated-user benchmark (``bench_classify.py``) does not make:

* ``--time``: the four 1024 x 1024 EBC1 micrographs with their round-1 strokes,
  scikit-image's trainable segmentation and each of our classifiers, ``--repeats``
  times, the order rotated from image to image and repeat to repeat (whatever
  runs right after scikit-image, whose forest uses every core, is slower);
  prints the median times and our median / scikit-image's median;
* ``--reuse``: a classifier trained on one micrograph's round-1 strokes and
  applied to every other micrograph of the same kind (Super1: 2 pairs, EBC1:
  12 pairs); prints the mean IoU per classifier.

``--without-edge-smoothing`` adds every classifier also without its edge
smoothing (``edge_smoothing=0``, the guided filter of the tenth round).

Usage::

    python benchmarks/bench_classify_reuse.py [--time] [--reuse] [--repeats 4]
        [--classifiers random_forest forest+mlp] [--without-edge-smoothing]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "src"))

import bench_classify as bench  # noqa: E402

from napari_interfaces.classify.features import normalize_image  # noqa: E402
from napari_interfaces.classify.model import KINDS, PixelClassifier  # noqa: E402
from napari_interfaces.classify.strokes import initial_strokes  # noqa: E402
from napari_interfaces.classify.workflow import apply_classifier, classify_image  # noqa: E402


def _images():
    out = []
    for i, (name, img, truth) in enumerate(bench.benchmark_set()):
        out.append((name, normalize_image(img), truth, initial_strokes(truth, seed=i)))
    return out


def _variants(kinds: list[str], without_edge: bool) -> dict[str, dict]:
    """``{name: PixelClassifier keywords}``: each kind, and each without edge smoothing."""
    out = {k: {"kind": k} for k in kinds}
    if without_edge:
        for k in kinds:
            out[f"{k} (no edge smoothing)"] = {"kind": k, "edge_smoothing": 0.0}
    return out


def time_table(images, kinds: list[str], repeats: int, without_edge: bool = False) -> None:
    """Median time of scikit-image and of each classifier on the 1024² images."""
    big = [x for x in images if x[1].shape[0] >= 1024]
    runs = {"scikit-image": lambda g, s: bench.run_skimage(g, s)}
    for name, kw in _variants(kinds, without_edge).items():
        runs[name] = lambda g, s, kw=kw: classify_image(g, s, model=PixelClassifier(**kw))
    for fn in runs.values():  # warm up (thread pools, imports)
        fn(big[0][1], big[0][3])
    names = list(runs)
    times: dict[str, list[float]] = {n: [] for n in names}
    loads = [os.getloadavg()[0]]
    for rep in range(repeats):
        for j, (_, g, _, s) in enumerate(big):
            k = (rep + j) % len(names)
            for n in names[k:] + names[:k]:
                t = time.perf_counter()
                runs[n](g, s)
                times[n].append(time.perf_counter() - t)
        loads.append(os.getloadavg()[0])
    ref = float(np.median(times["scikit-image"]))
    print(f"\nload {min(loads):.1f}-{max(loads):.1f}, {len(big)} images x {repeats} repeats\n")
    print("| method | median s per 1024² image | / scikit-image's |")
    print("|---|---|---|")
    for n in names:
        med = float(np.median(times[n]))
        print(f"| {n} | {med:.3f} | {med / ref:.2f} |")


def reuse_table(images, kinds: list[str], without_edge: bool = False) -> None:
    """Mean IoU of a classifier trained on one micrograph and applied to the others."""
    print("\n| classifier | mean IoU on the other images | pairs |")
    print("|---|---|---|")
    for k, kw in _variants(kinds, without_edge).items():
        res = []
        for group in ("Super1", "EBC1"):
            items = [x for x in images if x[0].startswith(group)]
            for a in items:
                model = classify_image(a[1], a[3], model=PixelClassifier(**kw)).model
                for c in items:
                    if c is not a:
                        pred = apply_classifier(model, c[1]).labels - 1
                        res.append(float(np.mean(bench.iou_per_class(pred, c[2]))))
        print(f"| {k} | {np.mean(res):.3f} | {len(res)} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time", action="store_true", help="time per 1024² image")
    ap.add_argument("--reuse", action="store_true", help="apply to the other micrographs")
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument(
        "--classifiers", nargs="+", choices=KINDS, default=["random_forest", "forest+mlp"]
    )
    ap.add_argument(
        "--without-edge-smoothing",
        action="store_true",
        help="also every classifier without its edge smoothing (guided filter)",
    )
    args = ap.parse_args(argv)
    if not bench.SHARED.is_dir():
        print(f"shared data not found at {bench.SHARED}: nothing to benchmark")
        return 0
    images = _images()
    if args.time or not args.reuse:
        time_table(images, args.classifiers, args.repeats, args.without_edge_smoothing)
    if args.reuse or not args.time:
        reuse_table(images, args.classifiers, args.without_edge_smoothing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
