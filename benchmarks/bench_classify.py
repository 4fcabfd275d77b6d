"""Paint to segment (issue 24): a simulated user on real micrographs; prints Markdown tables.

Images (``../shared/data/micrographs``, see its README):

* NASA Ni superalloy SEM, 512 x 512, two images; 3 classes from the RGBA
  masks (matrix, secondary gamma-prime = blue, tertiary gamma-prime = red);
* NASA environmental-barrier-coating SEM cross-sections, 1024 x 1024, four
  images; 3 classes from the uint8 masks (background = substrate + top
  layers, the coating layer, cracks and pores in it).

The simulated user (:mod:`napari_interfaces.classify.strokes`, seeded by the
image index, identical for both methods):

* round 1 -- a few random-walk strokes inside every visually distinct region
  (every connected region of a class covering >= 1 % of the image, at least
  4 strokes per class, in its largest regions), brush radius 2, at most
  1.5 % of the pixels;
* round 2 -- the round-1 strokes plus one stroke in each of the 6 largest
  connected regions that the method labelled wrongly (at most 1 % more
  pixels). Each method gets the strokes for *its own* errors (same
  generator and seed), as a user would paint where they see mistakes.

Methods, on the same grey image (mean of the RGB channels, 0.5/99.5 %
percentiles to [0, 1]):

* ``skimage``: scikit-image's trainable segmentation as in its gallery
  example -- ``multiscale_basic_features(intensity, texture, no edges,
  sigma 1..16)`` + ``RandomForestClassifier(n_estimators=50, max_depth=10,
  max_samples=0.05)`` via ``future.fit_segmenter`` / ``predict_segmenter``;
* ``ours``: :func:`napari_interfaces.classify.workflow.classify_image`
  with its defaults (7 scales 1..64 px, 7 features per scale on an image
  pyramid, plus 9 fine-scale full-resolution maps; a class-balanced forest
  of 32 trees of depth 10, cluster-smoothed, mixed 0.7 / 0.3 with a small
  neural head: ``kind="forest+mlp"``, the default since the ninth round;
  ``--classifier random_forest`` for the forest alone, the default before).
  ``--propagate``: ours with the strokes also spread by a random walker with
  the forest's probabilities as its prior (opt-in ``propagate`` parameter,
  :mod:`napari_interfaces.classify.propagate`).
  By default each pixel's probabilities are mixed with the mean of its
  feature-space cluster (``cluster_smoothing`` parameter,
  :mod:`napari_interfaces.classify.clusters`); ``--no-cluster-smoothing``
  runs the forest's own probabilities (the classifier before round 7).

Times are features + training + prediction of the whole image, round 1, on
the machine as it is (all methods in the same process, one after the other).
Every method first runs once on the first image outside the timings (thread
pools, imports, first large allocations: scikit-image's first run used to
include 0.5-1 s of them), and the order of the methods rotates from image to
image (whatever ran right after scikit-image, whose forest uses every core,
was measured 0.05-0.4 s slower).

``--superpixel-step 8`` runs ours with probabilities averaged in
edge-following superpixels (``PixelClassifier(superpixel_step=8)``, opt-in).

``--classifier mlp`` runs ours with the neural head (``PixelClassifier(kind="mlp")``,
:mod:`napari_interfaces.classify.mlp`, NumPy); ``--classifier forest+mlp`` with the
forest and the head mixed (``PixelClassifier(kind="forest+mlp")``, eighth round).

``--features basic vgg basic+vgg`` runs ours once per feature set (the
``features`` parameter: hand-made, learned VGG16 features of the shipped HED
network, or both), each on the same round-1 strokes and its own round-2
corrections; ``--seed N`` sets the forest's seed (default 0). The network
is loaded once before the timings (as the dock keeps it loaded).
``basic+vgg-fast`` is the preset of ``FEATURE_PRESETS`` (basic features without
the fine-scale extras, VGG16 at 1/4 resolution, 12 components per layer; ninth
round). ``--learned-downsample N`` runs the learned features on the image pooled N
times smaller per side (``FeatureSettings.learned_downsample``; default:
the package's).

``--chips`` adds chip communities at their defaults (auto chip, merged to
the true number of classes) and says where the chips are wider than the
image's thin features.

Usage::

    python benchmarks/bench_classify.py [--quick] [--chips] [--superpixel-step 8]
        [--features basic vgg basic+vgg basic+vgg-fast] [--learned-downsample 2|4] [--seed 0] [--propagate]
        [--classifier random_forest|extra_trees|mlp|forest+mlp] [--no-cluster-smoothing]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_interfaces.classify.features import (  # noqa: E402
    FEATURE_PRESETS,
    FEATURE_SETS,
    normalize_image,
)
from napari_interfaces.classify.strokes import correction_strokes, initial_strokes  # noqa: E402
from napari_interfaces.classify.workflow import classify_image  # noqa: E402
from napari_interfaces.cluster.images import read_mask_rgba  # noqa: E402

SHARED = (
    Path(os.environ.get("NAPARI_INTERFACES_SHARED_DATA", ROOT.parent / "shared" / "data"))
    / "micrographs"
)


def benchmark_set(quick: bool = False) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, grey image, truth classes 0..K-1)`` for every image with a mask."""
    import tifffile

    out = []
    for stem, mask in (
        ("nasa_Super1_test_spot2_0d_0", "nasa_Super1_test_annot_spot2_0d_0_mask"),
        ("nasa_Super1_val_spot1_0d_1", "nasa_Super1_val_annot_spot1_0d_1_mask"),
    ):
        truth = read_mask_rgba(SHARED / f"{mask}.tif")
        out.append(
            (f"Super1 {stem.split('_')[3]}", tifffile.imread(SHARED / f"{stem}.tif"), truth)
        )
    ebc = sorted(SHARED.glob("nasa_EBC1_*_mask.tif"))
    for m in ebc[:1] if quick else ebc:
        img = tifffile.imread(m.with_name(m.name.replace("_mask", "")))
        out.append((f"EBC1 {m.name.split('_')[3]}", img, tifffile.imread(m).astype(np.int32)))
    return out


def iou_per_class(pred: np.ndarray, truth: np.ndarray) -> list[float]:
    """IoU of every truth class (pred and truth in the same values)."""
    res = []
    for c in np.unique(truth):
        a, b = pred == c, truth == c
        res.append(float((a & b).sum()) / max(1, int((a | b).sum())))
    return res


def run_skimage(gray: np.ndarray, scribbles: np.ndarray, seed: int = 0) -> np.ndarray:
    """scikit-image's trainable segmentation (gallery settings); labels in scribble values."""
    from skimage import feature, future
    from sklearn.ensemble import RandomForestClassifier

    feats = feature.multiscale_basic_features(
        gray, intensity=True, edges=False, texture=True, sigma_min=1, sigma_max=16
    )
    clf = RandomForestClassifier(
        n_estimators=50, n_jobs=-1, max_depth=10, max_samples=0.05, random_state=seed
    )
    clf = future.fit_segmenter(scribbles, feats, clf)
    return future.predict_segmenter(feats, clf)


SUPERPIXEL_STEP = 0.0  # --superpixel-step
PROPAGATE = False  # --propagate
CLASSIFIER = "forest+mlp"  # --classifier (the package default)
CLUSTER_SMOOTHING = True  # --no-cluster-smoothing
LEARNED_DOWNSAMPLE = 0  # --learned-downsample (0: the package's default)


def run_ours(
    gray: np.ndarray, scribbles: np.ndarray, seed: int = 0, features: str | None = None
) -> np.ndarray:
    from dataclasses import replace

    from napari_interfaces.classify.features import FeatureSettings
    from napari_interfaces.classify.model import PixelClassifier

    # the feature set's settings (a preset such as basic+vgg-fast fixes more than which
    # features are on), then --learned-downsample
    settings = FeatureSettings()
    if features is not None:
        settings = settings.with_feature_set(features)
    if LEARNED_DOWNSAMPLE:
        settings = replace(settings, learned_downsample=LEARNED_DOWNSAMPLE)
    model = PixelClassifier(
        settings,
        superpixel_step=SUPERPIXEL_STEP,
        seed=seed,
        propagate=PROPAGATE,
        kind=CLASSIFIER,
        cluster_smoothing=CLUSTER_SMOOTHING,
    )
    return classify_image(gray, scribbles, model=model).labels


METHODS = {"skimage": run_skimage, "ours": run_ours}


def methods_for(feature_sets: list[str] | None) -> dict:
    """``{"skimage": ..., "ours": ...}`` or one "ours (SET)" per feature set."""
    if not feature_sets:
        return dict(METHODS)
    out = {"skimage": run_skimage}
    for fs in feature_sets:
        out[f"ours ({fs})"] = lambda g, s, seed=0, fs=fs: run_ours(g, s, seed, features=fs)
    return out


def chip_report(gray: np.ndarray, truth: np.ndarray) -> tuple[float, int, float, str]:
    """Chip communities at defaults: (mean IoU after matching, chip, thin width px, verdict)."""
    from scipy import ndimage as ndi
    from scipy.optimize import linear_sum_assignment

    from napari_interfaces.cluster.pipeline import segment_by_communities

    k = len(np.unique(truth))
    res = segment_by_communities(gray, merge_to=k)
    lab = np.asarray(res.labels)
    vals = np.unique(lab)
    cost = np.array([[-((lab == v) & (truth == c)).sum() for c in range(k)] for v in vals])
    r, c = linear_sum_assignment(cost)
    mapped = np.full(lab.shape, -1)
    for i, j in zip(r, c):
        mapped[lab == vals[i]] = j
    miou = float(np.mean(iou_per_class(mapped, truth)))
    chip = int(res.grid.chip)
    # the narrowest class: twice the median distance to its boundary (its typical width)
    widths = []
    for cl in range(k):
        d = ndi.distance_transform_edt(truth == cl)
        inside = d[truth == cl]
        widths.append(2.0 * float(np.median(inside)) if inside.size else 0.0)
    thin = min(widths)
    verdict = "thin features narrower than a chip" if thin < chip / 2 else "ok"
    return miou, chip, thin, verdict


def _table(rows: list[dict], ours: str) -> None:
    """The Markdown table of one of our variants against scikit-image."""
    print(
        f"\n| image | painted r1 / r2 | scikit-image r1 | {ours} r1 | scikit-image r2 "
        f"| {ours} r2 | time skimage (s) | time {ours} (s) | {ours} / skimage |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    agg = {m: [[], [], [], []] for m in ("skimage", ours)}
    for r in rows:
        sk, us = r["skimage"], r[ours]
        for m in agg:
            agg[m][0].append(np.mean(r[m][0]))
            agg[m][1].append(np.mean(r[m][1]))
            agg[m][2].append(r[m][2])
            agg[m][3].append(r[m][3])
        print(
            f"| {r['name']} ({r['size']}) | {100 * r['paint1']:.2f} % / {100 * us[4]:.2f} % "
            f"| {np.mean(sk[0]):.3f} | **{np.mean(us[0]):.3f}** "
            f"| {np.mean(sk[1]):.3f} | **{np.mean(us[1]):.3f}** "
            f"| {sk[2]:.1f} | {us[2]:.1f} | {us[2] / sk[2]:.2f} |"
        )
    sk, us = agg["skimage"], agg[ours]
    print(
        f"| **mean** | | {np.mean(sk[0]):.3f} | **{np.mean(us[0]):.3f}** | {np.mean(sk[1]):.3f} "
        f"| **{np.mean(us[1]):.3f}** | {np.mean(sk[2]):.1f} | {np.mean(us[2]):.1f} "
        f"| {np.sum(us[2]) / np.sum(sk[2]):.2f} |"
    )
    big = [r for r in rows if r["size"] == "1024²"]
    if big:
        ratio = [r[ours][2] / r["skimage"][2] for r in big]
        print(
            f"\n1024² images, {ours} / scikit-image time (round 1): "
            f"{sum(r[ours][2] for r in big) / sum(r['skimage'][2] for r in big):.2f} "
            f"(per image {min(ratio):.2f}-{max(ratio):.2f})"
        )
    print(f"\nPer-class IoU, round 1 / round 2 ({ours}):")
    for r in rows:
        a, b = r[ours][0], r[ours][1]
        print(
            f"- {r['name']}: "
            + ", ".join(f"class {c}: {x:.2f} / {y:.2f}" for c, (x, y) in enumerate(zip(a, b)))
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one EBC image only")
    ap.add_argument("--chips", action="store_true", help="also chip communities at defaults")
    ap.add_argument(
        "--superpixel-step",
        type=float,
        default=0.0,
        help="ours with PixelClassifier(superpixel_step=N) (0 = the default classifier)",
    )
    ap.add_argument(
        "--features",
        nargs="+",
        choices=(*FEATURE_SETS, *FEATURE_PRESETS),
        help="run ours once per feature set (default: the classifier's default)",
    )
    ap.add_argument(
        "--learned-downsample",
        type=int,
        choices=(1, 2, 4, 8),
        default=0,
        help="the learned features' image pooled this many times smaller per side",
    )
    ap.add_argument("--seed", type=int, default=0, help="the forest's seed (ours and skimage)")
    ap.add_argument(
        "--propagate", action="store_true", help="ours with stroke propagation (random walker)"
    )
    ap.add_argument(
        "--classifier",
        choices=("random_forest", "extra_trees", "mlp", "forest+mlp"),
        default="forest+mlp",
        help="ours with this classifier (PixelClassifier kind; forest+mlp: the forest and the "
        "neural head mixed; mlp: the neural head alone)",
    )
    ap.add_argument(
        "--no-cluster-smoothing",
        action="store_true",
        help="ours without mixing the probabilities with their feature-space cluster's mean",
    )
    args = ap.parse_args(argv)
    global SUPERPIXEL_STEP, PROPAGATE, CLASSIFIER, CLUSTER_SMOOTHING, LEARNED_DOWNSAMPLE
    SUPERPIXEL_STEP = args.superpixel_step
    PROPAGATE = args.propagate
    CLASSIFIER = args.classifier
    CLUSTER_SMOOTHING = not args.no_cluster_smoothing
    LEARNED_DOWNSAMPLE = args.learned_downsample
    methods = methods_for(args.features)
    ours_names = [m for m in methods if m != "skimage"]
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED}: nothing to benchmark")
        return 0
    print(
        f"# bench_classify ({platform.node()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.1f}, "
        f"seed {args.seed}, propagate {PROPAGATE}, classifier {CLASSIFIER}, "
        f"cluster smoothing {CLUSTER_SMOOTHING}, learned downsample "
        f"{LEARNED_DOWNSAMPLE or 'default'})\n"
    )
    if any("vgg" in m for m in methods):  # load the network once, outside the timings
        from napari_interfaces.nets.hed_weights import load_hed

        load_hed("finetuned", device="cpu")
    rows, chips = [], []
    images = benchmark_set(args.quick)
    # every method once outside the timings (thread pools, imports, first allocations)
    warm = normalize_image(images[0][1])
    for fn in methods.values():
        fn(warm, initial_strokes(images[0][2], seed=0), seed=args.seed)
    names = list(methods)
    for i, (name, img, truth) in enumerate(images):
        gray = normalize_image(img)
        s1 = initial_strokes(truth, seed=i)
        row = {"name": name, "size": f"{gray.shape[0]}²", "paint1": (s1 > 0).mean()}
        k = i % len(names)  # the methods' order rotates from image to image
        for mname in names[k:] + names[:k]:
            fn = methods[mname]
            t = time.perf_counter()
            p1 = fn(gray, s1, seed=args.seed)
            t1 = time.perf_counter() - t
            s2 = correction_strokes(truth, p1, s1, seed=100 + i)
            t = time.perf_counter()
            p2 = fn(gray, s2, seed=args.seed)
            t2 = time.perf_counter() - t
            row[mname] = (
                iou_per_class(p1 - 1, truth),
                iou_per_class(p2 - 1, truth),
                t1,
                t2,
                (s2 > 0).mean(),
            )
        rows.append(row)
        line = f"{name}: " + ", ".join(
            f"{m} r1 {np.mean(row[m][0]):.3f} r2 {np.mean(row[m][1]):.3f} ({row[m][2]:.1f}s)"
            for m in methods
        )
        print(line, flush=True)
        if args.chips:
            chips.append((name, *chip_report(gray, truth)))
    for ours in ours_names:
        _table(rows, ours)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    if chips:
        print(
            "\n| image | chip communities (defaults, merged to K) mean IoU | chip (px) "
            "| narrowest class width (px) | verdict |"
        )
        print("|---|---|---|---|---|")
        for name, miou, chip, thin, verdict in chips:
            print(f"| {name} | {miou:.3f} | {chip} | {thin:.0f} | {verdict} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
