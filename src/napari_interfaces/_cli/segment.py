"""``napari-interfaces train | segment | evaluate``: the U-Net segmentation pipeline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._spec import add_command, add_spec, spec_from_args

#: ``train`` options whose default depends on the mode: a database store
#: (:class:`~..segment.train.TrainConfig`) or a folder of corrected frames
#: (:class:`~..segment.finetune.FinetuneFolderParams`); argparse leaves them
#: ``None`` when not given.
MODE_DEFAULTS = ("epochs", "batch_size", "lr", "patience")


def register(groups: dict) -> None:
    from ..segment.finetune import FinetuneFolderParams
    from ..segment.inference import EvaluateFiles, SegmentFiles, SegmentParams
    from ..segment.train import TrainConfig, TrainFiles

    root = groups["root"]
    folder = FinetuneFolderParams()
    t = add_command(
        root,
        "train",
        run_train,
        TrainFiles,
        TrainConfig,
        help="train a U-Net on a simulated database, or fine-tune one on a folder of "
        "corrected frames",
        description="Train a U-Net (ResNet-style encoder) with cross-entropy + Dice loss, "
        "dihedral (and optionally scale) augmentation, checkpointing and early stopping on a "
        "database made by `napari-interfaces simulate database`. Writes MODEL.pt + MODEL.json "
        "(metadata: pixel size, classes, settings, sha256) in one step when training ends; an "
        "existing model there is kept until then. An interrupted run resumes from "
        "MODEL.pt.ckpt. Few-shot fine-tuning from corrected frames: --init default --images "
        "DIR --labels DIR (same-named PNG/TIFF label images, label > 0 = particle; the bottom "
        f"{folder.val_band:.0%} of every frame is held out for validation and early stopping "
        "keeps the best epoch; defaults sized for 5 frames of 512² in a few minutes on 2 CPU "
        f"cores: --epochs {folder.epochs}, --batch-size {folder.batch_size}, --lr "
        f"{folder.lr:g}, --patience {folder.patience}).",
    )
    add_spec(t, FinetuneFolderParams, skip=tuple(p.name for p in TrainConfig.params()))
    t.set_defaults(**dict.fromkeys(MODE_DEFAULTS))

    add_command(
        root,
        "segment",
        run_segment,
        SegmentFiles,
        SegmentParams,
        help="segment micrographs with a U-Net: labels, particles, sizes",
        description="Segment micrographs (TIFF, PNG, JPEG; DM3/DM4/EMD/MRC with rosettasciio) "
        "with tiled inference. Images are rescaled to the model's training pixel size using "
        "--pixel-size, else the pixel size in the file, else one estimated from the lattice "
        "fringes, else the model's own (the table and summary.json say which). Writes per "
        "image: NAME_labels.tif, NAME_particles.tif (touching particles split), "
        "NAME_particles.csv, NAME_sizes.png (and NAME_uncertainty.tif with --uncertainty); "
        "plus summary.json.",
    )

    add_command(
        root,
        "evaluate",
        run_evaluate,
        EvaluateFiles,
        help="F1 and IoU of a model on a database store",
        description="Segment every completed sample of a database store and report "
        "pixel-wise F1 and IoU of the foreground classes.",
    )


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


def _mode_values(spec, args: argparse.Namespace) -> dict:
    """The ``train`` options of ``spec`` as given (the mode's defaults where not given)."""
    return {
        p.name: getattr(args, p.name)
        for p in spec.params()
        if p.cli
        and hasattr(args, p.name)
        and not (p.name in MODE_DEFAULTS and getattr(args, p.name) is None)
    }


def _check_out(out: Path, inputs: list, overwrite: bool) -> Path:
    from ..core.errors import ParameterError
    from ..core.outputs import check_output

    if out.is_dir():
        raise ParameterError("out", f"{out} is a folder; give the model file, e.g. {out}/model.pt")
    if out.suffix != ".pt":
        raise ParameterError("out", f"{out}: the model file name must end in .pt")
    check_output(out, inputs, overwrite=overwrite, name="--out")
    check_output(out.with_suffix(".json"), inputs, overwrite=overwrite, name="--out")
    return out


def validate_train(args: argparse.Namespace):
    """``train`` on a database: ``(TrainFiles, TrainConfig, out)``, checked before any work."""
    from ..core.errors import ParameterError
    from ..segment.train import TrainConfig, TrainFiles

    files = spec_from_args(TrainFiles, args)
    cfg = TrainConfig(**_mode_values(TrainConfig, args))
    if files.data is None:
        raise ParameterError("data", "give a database store (or --images and --labels)")
    _check_data(files.data)
    out = _check_out(files.required("out", what="the model file"), [files.data], files.overwrite)
    return files, cfg, out


def validate_finetune(args: argparse.Namespace):
    """``train --images --labels``: ``(TrainFiles, FinetuneFolderParams, out)``."""
    from ..core.errors import ParameterError
    from ..segment.finetune import FinetuneFolderParams
    from ..segment.train import TrainFiles

    files = spec_from_args(TrainFiles, args)
    if files.images is None or files.labels is None:
        missing = "labels" if files.labels is None else "images"
        raise ParameterError(missing, "fine-tuning from a folder needs both --images and --labels")
    if files.data is not None:
        raise ParameterError("data", "give either --data or --images/--labels, not both")
    if not args.init:
        raise ParameterError("init", "fine-tuning needs the base model, e.g. --init default")
    for name in ("images", "labels"):
        d = getattr(files, name)
        if not d.is_dir():
            raise ParameterError(name, f"{d}: no such folder")
    params = FinetuneFolderParams(**_mode_values(FinetuneFolderParams, args))
    out = _check_out(
        files.required("out", what="the model file"), [files.images, files.labels], files.overwrite
    )
    return files, params, out


def run_finetune(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..segment.finetune import finetune_folder

    files, params, out = validate_finetune(args)
    base = _load(args.init, "cpu")
    model, path, info = finetune_folder(
        base, files.images, files.labels, out, params, progress=cli_progress(not files.quiet)
    )
    f1 = info.get("validation_f1")
    f0 = info.get("validation_f1_first_epoch")
    srcs = sorted(
        {u["source"] + (f" from {u['cue']}" if u.get("cue") else "") for u in info["pixel_sizes"]}
    )
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
    files, cfg, out = validate_train(args)
    if cfg.init:
        _load(cfg.init, "cpu")  # a bad --init file fails before training starts
    result = train(
        files.data, out, cfg, progress=cli_progress(not files.quiet), resume=files.resume
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


def validate_segment(args: argparse.Namespace):
    """``segment``'s files and parameters checked before anything is written."""
    from ..core.errors import InputError
    from ..core.outputs import check_output
    from ..segment.inference import SegmentFiles, SegmentParams

    files = spec_from_args(SegmentFiles, args)
    params = spec_from_args(SegmentParams, args)
    out = files.required("out", what="the output folder")
    for path in files.images:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    check_output(out, files.images, overwrite=files.overwrite, name="--out")
    return files, params


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
    from ..segment.inference import PIXEL_SIZE_RANGE, segment_image
    from ..segment.particles import write_size_histogram

    files, p = validate_segment(args)
    model = _load(files.model, files.device)
    progress = cli_progress(not files.quiet)
    rows = []
    summary = {
        "model": str(model.path),
        "model_sha256": model.metadata.get("sha256"),
        "model_pixel_size": model.pixel_size,
        "images": [],
    }
    with atomic_dir(files.out) as tmp:
        for path, stem in zip(files.images, _output_stems(list(files.images))):
            mic = read_micrograph(path, warn_frames=False)
            from_file = mic.pixel_size
            if from_file and not PIXEL_SIZE_RANGE[0] <= from_file <= PIXEL_SIZE_RANGE[1]:
                print(
                    f"note: {path}: the file's pixel size {from_file:.3g} Å is implausible for "
                    "HRTEM (a resolution tag in inches?); treated as unknown",
                    file=sys.stderr,
                )
                from_file = None
            given = p.pixel_size or from_file
            if mic.metadata.get("frames", 1) > 1:  # a series: every frame, one pixel size
                from ..io.micrograph import read_frames
                from ..segment.series import segment_frames

                res = segment_frames(
                    read_frames(path)[1], model, p.replace(pixel_size=given), progress=progress
                )
            else:
                res = segment_image(
                    mic.data, model, p.replace(pixel_size=given), progress=progress
                )
            source = res.pixel_size_source
            if source == "given":
                source = "--pixel-size" if p.pixel_size else "file"
            names = {"labels": f"{stem}_labels.tif"}
            meta = {"source": str(path), "pixel_size_source": source}
            if res.labels.ndim == 3:  # a series: frame index, then y, x
                meta.update(frames=int(res.labels.shape[0]), frame_axis="t (index)")
            write_tiff(tmp / names["labels"], res.labels, res.grid, metadata=meta)
            if res.instances is not None:
                names["particles"] = f"{stem}_particles.tif"
                names["table"] = f"{stem}_particles.csv"
                names["histogram"] = f"{stem}_sizes.png"
                write_tiff(tmp / names["particles"], res.instances, res.grid, metadata=meta)
                res.particles.to_csv(tmp / names["table"])
                write_size_histogram(res.particles, tmp / names["histogram"], title="")
            if res.uncertainty is not None:
                names["uncertainty"] = f"{stem}_uncertainty.tif"
                write_tiff(tmp / names["uncertainty"], res.uncertainty, res.grid, metadata=meta)
            entry = dict(res.summary(), image=str(path), pixel_size_source=source, files=names)
            entry["multiscale"] = list(p.factors) if p.multiscale else None
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
    print(f"results in {files.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..core.progress import cli_progress
    from ..segment.inference import EvaluateFiles, evaluate_store
    from ..simulate.database import completed_indices

    files = spec_from_args(EvaluateFiles, args)
    data = files.required("data", what="the database store")
    _check_data(data)
    model = _load(files.model, files.device)
    idx = completed_indices(data)
    if files.max_samples:
        idx = idx[: files.max_samples]
    s = evaluate_store(model, data, indices=idx, progress=cli_progress(not files.json))
    if files.json:
        print(json.dumps(s))
    else:
        print(
            f"{data}: F1 {s['f1']:.4f}, IoU {s['iou']:.4f} over {s['n']} samples",
            file=sys.stdout,
        )
    return 0
