"""Benchmarks of chip-community segmentation (issue 7); prints Markdown tables.

Sections:
1. accuracy on synthetic micrographs with known regions (ARI, mIoU after
   Hungarian matching, communities found), several seeds;
2. stability across Louvain seeds (pairwise ARI between runs);
3. real images: NASA superalloy against its masks, maps of PNNL LaO / MoO3
   (PNG in docs/images/cluster_*.png);
4. speed on a 4096 x 4096 image, 64-px chips at stride 32, per stage.

Usage::

    python benchmarks/bench_cluster.py [--quick] [--no-figures] [--resnet-chips 512]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from napari_interfaces.cluster.demo import save_figure, scores
from napari_interfaces.cluster.images import read_mask_rgba
from napari_interfaces.cluster.pipeline import segment_by_communities
from napari_interfaces.cluster.synthetic import order_disorder_micrograph, texture_mosaic

SHARED = (
    Path(os.environ.get("NAPARI_INTERFACES_SHARED_DATA", ROOT.parent / "shared" / "data"))
    / "micrographs"
)
IMAGES = ROOT / "docs" / "images"


def table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print()


def accuracy(seeds, size, feats):
    print(
        f"### Accuracy on synthetic micrographs ({size}x{size}, chip 64, stride 32, k 10, resolution 1)\n"
    )
    rows = []
    for (gname, gen, K), feat in itertools.product(
        [
            ("order/disorder (3 classes)", order_disorder_micrograph, 3),
            ("texture mosaic (4 classes)", texture_mosaic, 4),
        ],
        feats,
    ):
        res = {"merge": [], "raw": []}
        for s in seeds:
            img, truth = gen((size, size), n_regions=12, seed=s)
            for mode in ("merge", "raw"):
                r = segment_by_communities(
                    img,
                    chip=64,
                    stride=32,
                    features=feat,
                    seed=0,
                    merge_to=K if mode == "merge" else None,
                    refine=mode == "merge",
                )
                sc = scores(r.labels, truth)
                res[mode].append((sc["ari"], sc["miou"], r.n_detected))
        m, raw = np.array(res["merge"]), np.array(res["raw"])
        rows.append(
            [
                gname,
                feat,
                f"{m[:, 0].mean():.3f} ({m[:, 0].min():.3f})",
                f"{m[:, 1].mean():.3f}",
                f"{raw[:, 0].mean():.3f}",
                f"{raw[:, 2].mean():.1f}",
            ]
        )
    table(
        [
            "image",
            "features",
            f"ARI merged to K + refine, mean (min) of {len(seeds)} seeds",
            "mIoU merged",
            "ARI raw Louvain",
            "communities found (raw)",
        ],
        rows,
    )


def stability(size):
    print(f"### Stability across Louvain seeds (order/disorder {size}x{size}, fft, 5 seeds)\n")
    img, truth = order_disorder_micrograph((size, size), n_regions=12, seed=7)
    rows = []
    for merge in (None, 3):
        labs = [
            segment_by_communities(img, chip=64, stride=32, seed=s, merge_to=merge).labels
            for s in range(5)
        ]
        from sklearn.metrics import adjusted_rand_score

        pair = [
            adjusted_rand_score(a.ravel(), b.ravel()) for a, b in itertools.combinations(labs, 2)
        ]
        vs = [scores(lab, truth)["ari"] for lab in labs]
        same_ids = np.mean([np.mean(labs[0] == lab) for lab in labs[1:]])
        rows.append(
            [
                merge or "off",
                f"{np.mean(pair):.3f} ({np.min(pair):.3f})",
                f"{np.mean(vs):.3f} ± {np.std(vs):.3f}",
                f"{same_ids:.3f}",
            ]
        )
    table(
        [
            "merge to",
            "pairwise ARI between seeds, mean (min)",
            "ARI vs truth",
            "pixels with the same ID as seed 0",
        ],
        rows,
    )


def real_images(figures):
    if not SHARED.is_dir():
        print(f"(shared data not found at {SHARED}; real-image section skipped)\n")
        return
    print("### NASA Ni superalloy SEM (512x512) against its masks\n")
    print(
        "Masks: blue = secondary γ′, red = tertiary γ′, else matrix. Two-class score: γ′ (both) vs matrix; "
        "three-class: secondary / tertiary / matrix. Pixel accuracy and mIoU after Hungarian matching.\n"
    )
    rows = []
    for stem, mask in (
        ("nasa_Super1_test_spot2_0d_0", "nasa_Super1_test_annot_spot2_0d_0_mask"),
        ("nasa_Super1_val_spot1_0d_1", "nasa_Super1_val_annot_spot1_0d_1_mask"),
    ):
        m = read_mask_rgba(SHARED / f"{mask}.tif")
        two = (m > 0).astype(int) + 1
        three = m + 1
        for feat, chip, stride in (("fft", 32, 8), ("filterbank", 32, 8), ("fft", 16, 8)):
            r2 = segment_by_communities(
                SHARED / f"{stem}.tif",
                chip=chip,
                stride=stride,
                features=feat,
                merge_to=2,
                refine=True,
            )
            r3 = segment_by_communities(
                SHARED / f"{stem}.tif",
                chip=chip,
                stride=stride,
                features=feat,
                merge_to=3,
                refine=True,
            )
            s2, s3 = scores(r2.labels, two), scores(r3.labels, three)
            rows.append(
                [
                    stem,
                    f"{feat} {chip}/{stride}",
                    f"{s2['accuracy']:.3f}",
                    f"{s2['miou']:.3f}",
                    f"{s3['accuracy']:.3f}",
                    f"{s3['miou']:.3f}",
                    f"{r2.timings['total']:.2f}",
                ]
            )
            if figures and feat == "fft" and chip == 32:
                from napari_interfaces.cluster.images import prepare_images

                save_figure(
                    IMAGES / f"cluster_{stem}.png",
                    prepare_images(SHARED / f"{stem}.tif")[..., 0],
                    r2.labels,
                    two,
                    title=f"2 communities, accuracy {s2['accuracy']:.2f}",
                )
    table(
        [
            "image",
            "features chip/stride",
            "2-class accuracy",
            "2-class mIoU",
            "3-class accuracy",
            "3-class mIoU",
            "s",
        ],
        rows,
    )
    print("### PNNL LaO and MoO3 (no masks): maps\n")
    rows = []
    for name in ("pnnl_LaO.png", "pnnl_MoO3.tiff"):
        for feat in ("fft", "learned"):
            r = segment_by_communities(
                SHARED / name, chip=64, stride=16, features=feat, merge_to=4, refine=True
            )
            rows.append(
                [
                    name,
                    feat,
                    r.n_detected,
                    ", ".join(f"{t['area_fraction']:.2f}" for t in r.table),
                    f"{r.timings['total']:.2f}",
                ]
            )
            if figures:
                stem = Path(name).stem
                save_figure(
                    IMAGES / f"cluster_{stem}_{feat}.png",
                    r.image[..., 0],
                    r.labels,
                    title=f"{feat}: {r.n_detected} communities merged to 4",
                )
    table(["image", "features", "communities found", "area fractions of the 4 merged", "s"], rows)


def speed(resnet_chips):
    print("### Speed: 4096 x 4096 image, 64-px chips at stride 32 (16,129 chips), 2-core CPU\n")
    t = time.perf_counter()
    img, truth = order_disorder_micrograph((4096, 4096), n_regions=40, seed=0)
    print(f"(synthetic image made in {time.perf_counter() - t:.1f} s, not counted)\n")
    rows = []
    for feat in ("fft", "filterbank", "learned"):
        segment_by_communities(
            img[:256, :256], chip=64, stride=32, features=feat
        )  # warm-up: imports, JIT
        load0 = os.getloadavg()[0]
        c0 = time.process_time()
        r = segment_by_communities(img, chip=64, stride=32, features=feat, merge_to=3)
        cpu = time.process_time() - c0
        t = r.timings
        rows.append(
            [
                feat,
                r.grid.n_chips,
                f"{t['load']:.2f}",
                f"{t['features']:.2f}",
                f"{t['graph']:.2f}",
                f"{t['communities']:.2f}",
                f"{t['paint']:.2f}",
                f"**{t['total']:.2f}**",
                f"{cpu:.1f}",
                f"{load0:.1f}",
                f"{scores(r.labels, truth)['ari']:.3f}",
            ]
        )
    if resnet_chips:
        import tempfile

        import torch

        from napari_interfaces.cluster.chips import make_grid
        from napari_interfaces.cluster.features import get_extractor
        from napari_interfaces.cluster.images import prepare_images
        from napari_interfaces.cluster.nets import resnet50

        with tempfile.TemporaryDirectory() as d:
            p = Path(d) / "r50_random.pt"
            torch.save(resnet50().state_dict(), p)
            ext = get_extractor("resnet50", weights=str(p), batch=64, device="cpu")
            x = prepare_images(img)
            g = make_grid(x.shape, 64, 32)
            sub = make_grid((64 * int(np.sqrt(resnet_chips)),) * 2, 64, 64)
            ext(x[:64, :64], make_grid((64, 64), 64))  # warm-up
            t0 = time.perf_counter()
            ext(x[: sub.shape[0], : sub.shape[1]], sub)
            per = (time.perf_counter() - t0) / sub.n_chips
        est = per * g.n_chips
        rows.append(
            [
                f"resnet50 (random weights, CPU; timed on {sub.n_chips} chips, extrapolated)",
                g.n_chips,
                "-",
                f"~{est:.0f}",
                "as fft",
                "as fft",
                "as fft",
                f"~{est + 1:.0f}",
                "-",
                f"{os.getloadavg()[0]:.1f}",
                "-",
            ]
        )
    table(
        [
            "features",
            "chips",
            "load (s)",
            "features (s)",
            "graph (s)",
            "communities (s)",
            "paint (s)",
            "total wall (s)",
            "CPU time (s)",
            "load average at start",
            "ARI",
        ],
        rows,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-figures", action="store_true")
    ap.add_argument("--resnet-chips", type=int, default=256)
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["accuracy", "stability", "real", "speed"]
    )
    args = ap.parse_args(argv)
    IMAGES.mkdir(parents=True, exist_ok=True)
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        "command: `python benchmarks/bench_cluster.py`\n"
    )
    seeds = [0, 1] if args.quick else [0, 1, 2]
    size = 768 if args.quick else 1024
    if "accuracy" not in args.skip:
        accuracy(seeds, size, ["fft", "filterbank", "learned"])
    if "stability" not in args.skip:
        stability(size)
    if "real" not in args.skip:
        real_images(not args.no_figures)
    if "speed" not in args.skip:
        speed(args.resnet_chips)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
