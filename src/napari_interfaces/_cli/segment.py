"""``napari-interfaces train | segment | evaluate``: the U-Net segmentation pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(groups: dict) -> None:
    root = groups["root"]
    t = root.add_parser(
        "train",
        help="train a U-Net on a simulated database (zarr store)",
        description="Train a U-Net (ResNet-style encoder) with cross-entropy + Dice loss, "
        "dihedral augmentation, checkpointing and early stopping on a database made by "
        "`napari-interfaces simulate database`. Writes MODEL.pt + MODEL.json (metadata: pixel "
        "size, classes, settings, sha256); an interrupted run resumes from MODEL.pt.ckpt.",
    )
    t.add_argument("--data", type=Path, required=True, help="database zarr store")
    t.add_argument("--out", type=Path, required=True, help="output model file (.pt)")
    t.add_argument("--epochs", type=int, default=20)
    t.add_argument("--batch-size", type=int, default=8)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument(
        "--crop", type=int, default=256, help="random crop side in px (0: whole samples)"
    )
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--patience", type=int, default=5, help="early stopping patience (epochs)")
    t.add_argument("--width", type=int, default=16, help="channels of the first stage")
    t.add_argument("--max-samples", type=int, default=None)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--no-deterministic", action="store_true", help="allow non-deterministic kernels"
    )
    t.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=run_train)

    s = root.add_parser(
        "segment",
        help="segment micrographs with a U-Net; writes a labels TIFF per image",
        description="Segment micrographs (TIFF, PNG, JPEG; DM3/DM4/EMD/MRC with rosettasciio) "
        "with tiled inference. Images are rescaled to the model's training pixel size using "
        "the pixel size in the file or --pixel-size.",
    )
    s.add_argument("images", nargs="+", type=Path, help="micrograph files")
    s.add_argument("--model", default="default", help="'default', a model name or a .pt file")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument(
        "--pixel-size", type=float, default=None, help="pixel size in Å (overrides the file)"
    )
    s.add_argument("--tile", type=int, default=1024, help="tile side in px")
    s.add_argument("--overlap", type=int, default=64, help="tile overlap in px")
    s.add_argument("--device", default="auto")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=run_segment)

    e = root.add_parser(
        "evaluate",
        help="F1 and IoU of a model on a database store",
        description="Segment every completed sample of a database store and report "
        "pixel-wise F1 and IoU of the foreground classes.",
    )
    e.add_argument("--model", default="default", help="'default', a model name or a .pt file")
    e.add_argument("--data", type=Path, required=True, help="database zarr store")
    e.add_argument("--max-samples", type=int, default=None)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=run_evaluate)


def _load(model: str, device: str):
    from ..core.weights import WeightsError
    from ..segment.models import load_model

    try:
        return load_model(model, device=device)
    except WeightsError as exc:  # a user-facing error (missing / corrupt file)
        raise ValueError(str(exc)) from exc


def run_train(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..segment.train import TrainConfig, train

    cfg = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        crop=args.crop or None,
        val_fraction=args.val_fraction,
        patience=args.patience,
        width=args.width,
        max_samples=args.max_samples,
        device=args.device,
        threads=args.threads,
        seed=args.seed,
        deterministic=not args.no_deterministic,
    )
    if args.crop and args.crop % 32:
        raise ValueError("--crop must be a multiple of 32")
    result = train(
        args.data, args.out, cfg, progress=cli_progress(not args.quiet), resume=not args.no_resume
    )
    best = result.best
    f1 = (
        f"validation F1 {best['f1']:.3f}, IoU {best['iou']:.3f}"
        if best.get("iou") is not None
        else ""
    )
    print(
        f"{result.path}: {len(result.history)} epochs{' (early stop)' if result.stopped_early else ''}, "
        f"{f1}, {result.images_per_second:.1f} images/s"
    )
    return 0


def run_segment(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..io.micrograph import read_micrograph, write_labels_tiff
    from ..segment.inference import segment_image

    model = _load(args.model, args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    progress = cli_progress(not args.quiet)
    for path in args.images:
        mic = read_micrograph(path)
        ps = args.pixel_size or mic.pixel_size
        res = segment_image(
            mic.data,
            model,
            pixel_size=ps,
            tile=args.tile,
            overlap=args.overlap,
            progress=progress,
            full_result=True,
        )
        out = write_labels_tiff(args.out / f"{path.stem}_labels.tif", res.labels, ps)
        frac = float((res.labels > 0).mean())
        note = (
            f"rescaled x{res.scale:.3g}"
            if res.scale != 1
            else ("no pixel size: not rescaled" if not ps else "at model pixel size")
        )
        print(f"{path} -> {out} ({frac:.1%} foreground, {note}, {res.seconds:.1f} s)")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..segment.inference import evaluate_store
    from ..simulate.database import completed_indices

    model = _load(args.model, args.device)
    idx = completed_indices(args.data)
    if args.max_samples:
        idx = idx[: args.max_samples]
    s = evaluate_store(model, args.data, indices=idx, progress=cli_progress(not args.json))
    if args.json:
        print(json.dumps(s))
    else:
        print(
            f"{args.data}: F1 {s['f1']:.4f}, IoU {s['iou']:.4f} over {s['n']} samples",
            file=sys.stdout,
        )
    return 0
