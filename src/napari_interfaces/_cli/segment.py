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
        help="train a U-Net on a simulated database, or fine-tune one on a folder of "
        "corrected frames",
        description="Train a U-Net (ResNet-style encoder) with cross-entropy + Dice loss, "
        "dihedral (and optionally scale) augmentation, checkpointing and early stopping on a "
        "database made by `napari-interfaces simulate database`. Writes MODEL.pt + MODEL.json "
        "(metadata: pixel size, classes, settings, sha256) in one step when training ends; an "
        "existing model there is kept until then. An interrupted run resumes from "
        "MODEL.pt.ckpt. Few-shot fine-tuning from corrected frames: --init default --images "
        "DIR --labels DIR (same-named PNG/TIFF label images, label > 0 = particle; the bottom "
        "20% of every frame is held out for validation and early stopping keeps the best "
        "epoch; defaults sized for 5 frames of 512² in a few minutes on 2 CPU cores).",
    )
    t.add_argument("--data", type=Path, default=None, help="database zarr store")
    t.add_argument(
        "--images",
        type=Path,
        default=None,
        help="folder of corrected frames (PNG/TIFF) to fine-tune on (needs --labels, --init)",
    )
    t.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="folder of label images named like the frames (label > 0 = particle)",
    )
    t.add_argument(
        "--pixel-size",
        type=float,
        default=None,
        help="Å/px of the --images frames (default: each file's, else estimated)",
    )
    t.add_argument("--out", type=Path, required=True, help="output model file (.pt)")
    t.add_argument("--epochs", type=int, default=None, help="default 20 (--images: 12)")
    t.add_argument("--batch-size", type=int, default=None, help="default 8 (--images: 4)")
    t.add_argument("--lr", type=float, default=None, help="default 2e-3 (--images: 5e-4)")
    t.add_argument(
        "--crop", type=int, default=256, help="random crop side in px (0: whole samples)"
    )
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument(
        "--patience",
        type=int,
        default=None,
        help="early stopping patience (epochs; default 5, --images: 4)",
    )
    t.add_argument("--width", type=int, default=16, help="channels of the first stage")
    t.add_argument("--max-samples", type=int, default=None)
    t.add_argument(
        "--scale-range",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="scale augmentation: magnify crops by a log-uniform factor in [LO, HI] "
        "(e.g. 0.5 2: tolerate a pixel size wrong by up to 2x)",
    )
    t.add_argument(
        "--degrade-prob",
        type=float,
        default=0.0,
        help="share of images blurred as a 1-10x coarser sampling would",
    )
    t.add_argument("--init", default=None, help="start from this model's weights (fine-tune)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    t.add_argument("--threads", type=int, default=2, help="CPU threads for torch")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument(
        "--no-deterministic", action="store_true", help="allow non-deterministic kernels"
    )
    t.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing model")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=run_train)

    s = root.add_parser(
        "segment",
        help="segment micrographs with a U-Net: labels, particles, sizes",
        description="Segment micrographs (TIFF, PNG, JPEG; DM3/DM4/EMD/MRC with rosettasciio) "
        "with tiled inference. Images are rescaled to the model's training pixel size using "
        "--pixel-size, else the pixel size in the file, else one estimated from the lattice "
        "fringes, else the model's own (the table and summary.json say which). Writes per "
        "image: NAME_labels.tif, NAME_particles.tif (touching particles split), "
        "NAME_particles.csv, NAME_sizes.png (and NAME_uncertainty.tif with --uncertainty); "
        "plus summary.json.",
    )
    s.add_argument("images", nargs="+", type=Path, help="micrograph files")
    s.add_argument("--model", default="default", help="'default', a model name or a .pt file")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument(
        "--pixel-size", type=float, default=None, help="pixel size in Å (overrides the file)"
    )
    s.add_argument(
        "--no-estimate",
        action="store_true",
        help="do not estimate a missing pixel size from lattice fringes",
    )
    s.add_argument(
        "--lattice-spacing",
        type=float,
        default=None,
        help="largest lattice spacing of the particles in Å for the estimate "
        "(default 2.355, Au {111})",
    )
    s.add_argument(
        "--multiscale",
        action="store_true",
        help="also run at 0.7x and 1.4x the pixel size and average (for an uncertain pixel "
        "size; about 3.5x slower)",
    )
    s.add_argument("--tile", type=int, default=1024, help="tile side in px")
    s.add_argument("--overlap", type=int, default=64, help="tile overlap in px")
    s.add_argument(
        "--uncertainty",
        action="store_true",
        help="test-time augmentation (8 flips/rotations): uncertainty map and per-particle "
        "uncertainty (about 8x slower)",
    )
    s.add_argument("--no-particles", action="store_true", help="skip the particle table")
    s.add_argument(
        "--split-depth",
        type=float,
        default=2.0,
        help="Å: split touching particles whose neck is this much narrower (watershed)",
    )
    s.add_argument("--min-area", type=float, default=0.5, help="smallest particle in nm²")
    s.add_argument("--device", default="auto")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
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
    """Load a model; a missing or bad file is a one-line InputError naming it."""
    from ..core.errors import InputError
    from ..core.weights import WeightsError
    from ..segment.models import load_model

    try:
        return load_model(model, device=device)
    except WeightsError as exc:  # a user-facing error (missing / corrupt file)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else f"{model}: bad model"
        raise InputError(f"--model: {msg}") from exc
    except (OSError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"--model {model}: not a usable model ({first})") from exc


def _check_data(path: Path) -> None:
    from ..core.errors import InputError

    if not path.exists():
        raise InputError(f"--data {path}: no such database store")
    if not path.is_dir():
        raise InputError(f"--data {path}: not a database store (a zarr folder)")


def validate_train(args: argparse.Namespace):
    """All ``train`` parameters checked in one place; returns ``(TrainConfig, out)``."""
    from ..core.errors import ParameterError
    from ..core.outputs import check_output
    from ..core.params import fraction, non_negative, positive
    from ..segment.train import TrainConfig

    epochs = positive("--epochs", _or(args.epochs, 20), integer=True, maximum=100000)
    batch = positive("--batch-size", _or(args.batch_size, 8), integer=True, maximum=4096)
    lr = positive("--lr", _or(args.lr, 2e-3), maximum=10.0)
    crop = non_negative("--crop", args.crop, integer=True, maximum=16384)
    if crop and (crop % 32 or crop < 32):
        raise ParameterError("--crop", f"must be 0 or a multiple of 32, got {crop}")
    val = fraction("--val-fraction", args.val_fraction, allow_zero=True, allow_one=False)
    patience = positive("--patience", _or(args.patience, 5), integer=True)
    width = positive("--width", args.width, integer=True, maximum=512)
    if args.max_samples is not None:
        positive("--max-samples", args.max_samples, integer=True)
    threads = positive("--threads", args.threads, integer=True, maximum=1024)
    scale_range = None
    if args.scale_range is not None:
        lo, hi = (positive("--scale-range", v, maximum=10.0) for v in args.scale_range)
        if lo > hi:
            raise ParameterError("--scale-range", f"LO must not exceed HI, got {lo:g} {hi:g}")
        scale_range = (lo, hi)
    degrade = fraction("--degrade-prob", args.degrade_prob, allow_one=True)
    if args.data is None:
        raise ParameterError("--data", "give a database store (or --images and --labels)")
    _check_data(args.data)
    out = Path(args.out)
    if out.is_dir():
        raise ParameterError(
            "--out", f"{out} is a folder; give the model file, e.g. {out}/model.pt"
        )
    if out.suffix != ".pt":
        raise ParameterError("--out", f"{out}: the model file name must end in .pt")
    check_output(out, [args.data], overwrite=args.overwrite, name="--out")
    check_output(out.with_suffix(".json"), [args.data], overwrite=args.overwrite, name="--out")
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch,
        lr=lr,
        crop=crop or None,
        val_fraction=val,
        patience=patience,
        width=width,
        max_samples=args.max_samples,
        device=args.device,
        threads=threads,
        seed=args.seed,
        deterministic=not args.no_deterministic,
        scale_range=scale_range,
        degrade_prob=degrade,
        init=args.init,
    )
    return cfg, out


def _or(value, default):
    return default if value is None else value


def _check_out(out: Path, inputs: list, overwrite: bool) -> Path:
    from ..core.errors import ParameterError
    from ..core.outputs import check_output

    if out.is_dir():
        raise ParameterError(
            "--out", f"{out} is a folder; give the model file, e.g. {out}/model.pt"
        )
    if out.suffix != ".pt":
        raise ParameterError("--out", f"{out}: the model file name must end in .pt")
    check_output(out, inputs, overwrite=overwrite, name="--out")
    check_output(out.with_suffix(".json"), inputs, overwrite=overwrite, name="--out")
    return out


def validate_finetune(args: argparse.Namespace) -> dict:
    """``train --images --labels`` parameters checked in one place: finetune_folder kwargs."""
    from ..core.errors import InputError, ParameterError
    from ..core.params import positive
    from ..segment.finetune import FOLDER_DEFAULTS

    if args.images is None or args.labels is None:
        missing = "--labels" if args.labels is None else "--images"
        raise ParameterError(missing, "fine-tuning from a folder needs both --images and --labels")
    if args.data is not None:
        raise ParameterError("--data", "give either --data or --images/--labels, not both")
    if not args.init:
        raise ParameterError("--init", "fine-tuning needs the base model, e.g. --init default")
    for flag, d in (("--images", args.images), ("--labels", args.labels)):
        if not Path(d).is_dir():
            raise InputError(f"{flag} {d}: no such folder")
    kw = dict(
        epochs=positive(
            "--epochs", _or(args.epochs, FOLDER_DEFAULTS["epochs"]), integer=True, maximum=100000
        ),
        batch_size=positive(
            "--batch-size",
            _or(args.batch_size, FOLDER_DEFAULTS["batch_size"]),
            integer=True,
            maximum=4096,
        ),
        lr=positive("--lr", _or(args.lr, FOLDER_DEFAULTS["lr"]), maximum=10.0),
        patience=positive(
            "--patience", _or(args.patience, FOLDER_DEFAULTS["patience"]), integer=True
        ),
        threads=positive("--threads", args.threads, integer=True, maximum=1024),
        seed=args.seed,
    )
    crop = positive("--crop", args.crop, integer=True, maximum=16384)
    if crop % 32 or crop < 32:
        raise ParameterError("--crop", f"must be a multiple of 32, got {crop}")
    kw["crop"] = crop
    if args.pixel_size is not None:
        from ..segment.inference import validate_segment_params

        kw["pixel_size"] = validate_segment_params(
            args.pixel_size, names={"pixel_size": "--pixel-size"}
        )["pixel_size"]
    out = _check_out(Path(args.out), [args.images, args.labels], args.overwrite)
    return dict(kw, out=out)


def run_finetune(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..segment.finetune import finetune_folder

    kw = validate_finetune(args)
    base = _load(args.init, "cpu")
    model, path, info = finetune_folder(
        base, args.images, args.labels, progress=cli_progress(not args.quiet), **kw
    )
    f1 = info.get("validation_f1")
    f0 = info.get("validation_f1_first_epoch")
    srcs = sorted({f"{u['source']}" for u in info["pixel_sizes"]})
    print(
        f"{path}: fine-tuned {model.name} from {args.init} on {info['n_images']} frame(s) "
        f"(pixel size {', '.join(srcs)}), best epoch {info.get('best_epoch')}"
        + (f", held-out F1 {f1:.3f}" if f1 is not None and f1 >= 0 else ", no held-out region")
        + (f" (first epoch {f0:.3f})" if f0 is not None else "")
    )
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..segment.train import train

    if args.images is not None or args.labels is not None:
        return run_finetune(args)
    cfg, out = validate_train(args)
    if cfg.init:
        _load(cfg.init, "cpu")  # a bad --init file fails before training starts
    result = train(
        args.data, out, cfg, progress=cli_progress(not args.quiet), resume=not args.no_resume
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


def validate_segment(args: argparse.Namespace) -> dict:
    """All ``segment`` parameters checked in one place, before anything is written."""
    from ..core.errors import InputError
    from ..core.outputs import check_output
    from ..core.params import non_negative, positive
    from ..segment.inference import validate_segment_params

    p = validate_segment_params(
        args.pixel_size,
        args.tile,
        args.overlap,
        names={"pixel_size": "--pixel-size", "tile": "--tile", "overlap": "--overlap"},
    )
    if args.lattice_spacing is not None:
        positive("--lattice-spacing", args.lattice_spacing, maximum=50.0)
    positive("--split-depth", args.split_depth, maximum=1000.0)
    non_negative("--min-area", args.min_area)
    for path in args.images:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    check_output(args.out, args.images, overwrite=args.overwrite, name="--out")
    return p


def _output_stems(paths: list[Path]) -> list[str]:
    """One unique file-name stem per input (same-named inputs get their folder's name)."""
    stems = [p.stem for p in paths]
    out = []
    for i, p in enumerate(paths):
        s = p.stem
        if stems.count(s) > 1:
            s = f"{p.parent.name}_{s}" if p.parent.name else s
            if sum(1 for q in paths if f"{q.parent.name}_{q.stem}" == s) > 1 or s in out:
                s = f"{s}_{i + 1}"
        out.append(s)
    return out


def run_segment(args: argparse.Namespace) -> int:
    from ..core.outputs import atomic_dir, verify_files
    from ..core.progress import cli_progress
    from ..io.micrograph import read_micrograph
    from ..io.tiff import write_tiff
    from ..segment.inference import MULTISCALE, PIXEL_SIZE_RANGE, segment_image
    from ..segment.particles import write_size_histogram

    p = validate_segment(args)
    model = _load(args.model, args.device)
    progress = cli_progress(not args.quiet)
    rows = []
    summary = {
        "model": str(model.path),
        "model_sha256": model.metadata.get("sha256"),
        "model_pixel_size": model.pixel_size,
        "images": [],
    }
    with atomic_dir(args.out) as tmp:
        for path, stem in zip(args.images, _output_stems(list(args.images))):
            mic = read_micrograph(path)
            from_file = mic.pixel_size
            if from_file and not PIXEL_SIZE_RANGE[0] <= from_file <= PIXEL_SIZE_RANGE[1]:
                print(
                    f"note: {path}: the file's pixel size {from_file:.3g} Å is implausible for "
                    "HRTEM (a resolution tag in inches?); treated as unknown",
                    file=sys.stderr,
                )
                from_file = None
            given = p["pixel_size"] or from_file
            res = segment_image(
                mic.data,
                model,
                pixel_size=given,
                tile=p["tile"],
                overlap=p["overlap"],
                estimate_pixel_size=not args.no_estimate,
                lattice_spacing=args.lattice_spacing,
                uncertainty=args.uncertainty,
                particles=not args.no_particles,
                min_particle_area=args.min_area,
                split_depth=args.split_depth,
                scales=MULTISCALE if args.multiscale else (1.0,),
                progress=progress,
            )
            source = res.pixel_size_source
            if source == "given":
                source = "--pixel-size" if p["pixel_size"] else "file"
            files = {"labels": f"{stem}_labels.tif"}
            meta = {"source": str(path), "pixel_size_source": source}
            write_tiff(tmp / files["labels"], res.labels, res.grid, metadata=meta)
            if res.instances is not None:
                files["particles"] = f"{stem}_particles.tif"
                files["table"] = f"{stem}_particles.csv"
                files["histogram"] = f"{stem}_sizes.png"
                write_tiff(tmp / files["particles"], res.instances, res.grid, metadata=meta)
                res.particles.to_csv(tmp / files["table"])
                write_size_histogram(res.particles, tmp / files["histogram"], title="")
            if res.uncertainty is not None:
                files["uncertainty"] = f"{stem}_uncertainty.tif"
                write_tiff(tmp / files["uncertainty"], res.uncertainty, res.grid, metadata=meta)
            entry = dict(res.summary(), image=str(path), pixel_size_source=source, files=files)
            entry["multiscale"] = list(MULTISCALE) if args.multiscale else None
            summary["images"].append(entry)
            n = len(res.particles) if res.particles is not None else None
            d = float(res.particles["equivalent_diameter_nm"].mean()) if n else float("nan")
            rows.append((path.name, res.pixel_size, source, res.scale, res.labels, n, d, res))
        listed = [f for e in summary["images"] for f in e["files"].values()]
        verify_files(tmp, listed)  # another process may not have removed any of them
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(
        f"{'image':<28} {'pixel size':>12} {'from':<12} {'scale':>6} {'fg':>6} "
        f"{'particles':>9} {'mean d':>8} {'seconds':>8}"
    )
    for name, ps, source, scale, labels, n, d, res in rows:
        print(
            f"{name[:28]:<28} {ps:>9.4g} Å {source:<12} {scale:>6.3g} "
            f"{(labels > 0).mean():>6.1%} {'' if n is None else n:>9} "
            f"{'' if n in (None, 0) else f'{d:.2f} nm':>8} {res.seconds['total']:>8.1f}"
        )
    if any(r[2] == "assumed" for r in rows):
        print(
            "note: 'assumed' = no pixel size in the file or --pixel-size and none estimated: "
            "the model's own was used (not rescaled); pass --pixel-size if you know it"
        )
    print(f"results in {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..core.params import positive
    from ..core.progress import cli_progress
    from ..segment.inference import evaluate_store
    from ..simulate.database import completed_indices

    if args.max_samples is not None:
        positive("--max-samples", args.max_samples, integer=True)
    _check_data(args.data)
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
