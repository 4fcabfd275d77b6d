"""``napari-interfaces cluster``: unsupervised segmentation by chip communities.

Also ``cluster-apply`` (apply a model saved from corrections to images or a
folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(groups: dict) -> None:
    p = groups["root"].add_parser(
        "cluster",
        help="unsupervised segmentation: chips, features, kNN graph, Louvain communities",
        description="Cut the image into chips, embed each chip, link similar chips in a cosine "
        "kNN graph, find Louvain communities and paint them back as a labels TIFF. Several "
        "IMAGEs are co-registered channels of one specimen.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image file(s); several = channels")
    p.add_argument("--chip", type=int, default=64, help="chip side in pixels (default 64)")
    p.add_argument("--stride", type=int, default=32, help="chip step in pixels (default 32)")
    p.add_argument(
        "--features",
        default="fft",
        choices=["fft", "filterbank", "resnet50", "learned"],
        help="chip features (default fft)",
    )
    p.add_argument(
        "--weights", default=None, metavar="FILE", help="weights file for resnet50/learned"
    )
    p.add_argument("--k", type=int, default=10, help="neighbours in the kNN graph (default 10)")
    p.add_argument(
        "--resolution", type=float, default=1.0, help="Louvain resolution (default 1.0)"
    )
    p.add_argument(
        "--merge-to", type=int, default=None, metavar="N", help="merge communities down to N"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--method",
        default="louvain",
        choices=["louvain", "networkx", "leiden"],
        help="community detection (leiden needs the optional leidenalg)",
    )
    p.add_argument(
        "--spatial-weight",
        type=float,
        default=0.0,
        help="weight of edges between adjacent chips (default 0)",
    )
    p.add_argument("--clahe", action="store_true", help="CLAHE contrast normalization first")
    p.add_argument("--refine", action="store_true", help="refine community boundaries per pixel")
    p.add_argument(
        "--out", required=True, metavar="LABELS.tif", help="output labels TIFF (uint16)"
    )
    p.add_argument("--json", action="store_true", help="print the community table as JSON")
    p.set_defaults(func=run)

    a = groups["root"].add_parser(
        "cluster-apply",
        help="apply a model learned from corrections to images or a folder",
        description="Label images with a model saved by the Chip communities dock "
        "('Learn from corrections'): MODEL.json + MODEL.npz.",
    )
    a.add_argument("model", metavar="MODEL", help="MODEL.json (MODEL.npz beside it)")
    a.add_argument("inputs", nargs="+", metavar="IMAGE_OR_FOLDER")
    a.add_argument("--out", required=True, metavar="FOLDER", help="output folder for *_labels.tif")
    a.set_defaults(func=run_apply)


def run(args: argparse.Namespace) -> int:
    import tifffile

    from ..cluster.pipeline import segment_by_communities
    from ..core.progress import cli_progress

    for f in args.images:
        if not Path(f).is_file():
            raise FileNotFoundError(f"{f}: no such image file")
    res = segment_by_communities(
        args.images,
        chip=args.chip,
        stride=args.stride,
        features=args.features,
        k=args.k,
        resolution=args.resolution,
        merge_to=args.merge_to,
        seed=args.seed,
        progress=cli_progress(enabled=not args.json and sys.stderr.isatty()),
        weights=args.weights,
        clahe=args.clahe,
        spatial_weight=args.spatial_weight,
        method=args.method,
        refine=args.refine,
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(out, res.labels.astype("uint16"), metadata={"axes": "YX"})
    summary = res.summary()
    summary["out"] = str(out)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{res.n_communities} communities ({res.n_detected} detected) over {res.grid.n_chips} chips "
            f"in {res.timings['total']:.2f} s -> {out}"
        )
        print(f"{'id':>3} {'area':>7} {'chips':>6}  mean intensity")
        for row in res.table:
            mi = ", ".join(f"{v:.3f}" for v in row["mean_intensity"])
            print(f"{row['id']:>3} {row['area_fraction']:>7.3f} {row['chips']:>6}  {mi}")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    import tifffile

    from ..cluster.corrections import CorrectionModel, apply_model, apply_to_folder

    model = CorrectionModel.load(args.model)
    out = Path(args.out)
    written = []
    for item in args.inputs:
        p = Path(item)
        if p.is_dir():
            written += apply_to_folder(model, p, out)
        elif p.is_file():
            labels, _ = apply_model(model, p)
            out.mkdir(parents=True, exist_ok=True)
            dst = out / f"{p.stem}_labels.tif"
            tifffile.imwrite(dst, labels.astype("uint16"))
            written.append(dst)
        else:
            raise FileNotFoundError(f"{p}: no such image or folder")
    for w in written:
        print(w)
    return 0
