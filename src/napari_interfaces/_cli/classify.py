"""``napari-interfaces classify``: segmentation from a few brush strokes (pixel classifier).

``classify IMAGE --scribbles SCRIBBLES.tif --out LABELS.tif`` trains a
pixel classifier on the painted pixels of SCRIBBLES (0 = unpainted, k =
class k) and labels every pixel of IMAGE with the same class values; a
per-pixel confidence is written beside it. ``--save-model`` keeps the
classifier (JSON + npz, no pickle), ``--model`` reuses one instead of
scribbles, ``--apply-to`` labels more images (files or folders; every frame
of a multi-frame TIFF) with it, ``--watch FOLDER`` labels images as they are
written into a folder.

Every parameter and path is checked before anything is read or written;
outputs are never an input, existing ones are replaced only with
``--overwrite``, and every file is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..io.micrograph import MICROGRAPH_SUFFIXES

LABEL_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = MICROGRAPH_SUFFIXES  # the one list (io/micrograph.py)


def register(groups: dict) -> None:
    from ..classify.workflow import ClassifyFiles, ClassifyParams
    from ._spec import add_spec

    p = groups["root"].add_parser(
        "classify",
        help="segment from a few brush strokes: a pixel classifier trained on scribbles",
        description="Train a pixel classifier (multi-scale intensity, gradient, Hessian, "
        "structure-tensor and texture features, optionally learned VGG16 features; a random "
        "forest mixed with a small neural network that also learns from the unpainted "
        "pixels) on the painted pixels of "
        "SCRIBBLES and label every pixel of IMAGE with the painted class values. Writes the "
        "labels and a per-pixel confidence (probability of the chosen class).",
    )
    add_spec(p, ClassifyFiles, ClassifyParams)
    p.set_defaults(func=run)


def _apply_inputs(items) -> list[Path]:
    from ..core.errors import InputError

    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise InputError(f"--apply-to {p}: no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"--apply-to {p}: no such file or folder")
    return files


def plan(args: argparse.Namespace) -> dict:
    """Check every parameter and path before anything is read or written.

    Returns the outputs: ``{"labels", "confidence", "model", "apply": [(src, labels, conf)],
    "files": ClassifyFiles, "params": ClassifyParams}``.
    """
    from ..classify.workflow import ClassifyFiles, ClassifyParams
    from ..core.errors import InputError, ParameterError
    from ..core.outputs import check_output, same_file
    from ._spec import spec_from_args

    params = spec_from_args(ClassifyParams, args)
    args = spec_from_args(ClassifyFiles, args)
    if args.scribbles and args.model:
        raise ParameterError("model", "give either --scribbles (train) or --model (reuse)")
    if not args.scribbles and not args.model:
        raise InputError("no --scribbles (strokes to train on) and no --model given")
    if args.scribbles and not args.image:
        raise InputError("--scribbles needs the IMAGE it was painted on")
    if args.model and args.save_model:
        raise ParameterError("save_model", "the classifier comes from --model already")
    if params.sigmas is not None and args.model:
        raise ParameterError("sigmas", "a saved --model keeps its own feature scales")
    if params.features is not None and args.model:
        raise ParameterError("features", "a saved --model keeps its own feature set")
    if params.classifier is not None and args.model:
        raise ParameterError("classifier", "a saved --model keeps its own classifier")
    if args.image and not args.out:
        raise InputError("--out LABELS.tif is required with IMAGE")
    if not args.image and not args.apply_to and not args.watch:
        raise InputError("nothing to label: give IMAGE (with --out), --apply-to or --watch")
    if args.watch is not None and not Path(args.watch).is_dir():
        raise InputError(f"--watch {args.watch}: no such folder")
    if args.watch is None and args.watch_timeout is not None:
        raise ParameterError("watch_timeout", "only with --watch")
    inputs = [p for p in (args.image, args.scribbles) if p]
    for name, p in (("IMAGE", args.image), ("--scribbles", args.scribbles)):
        if p and not Path(p).is_file():
            raise InputError(f"{name} {p}: no such file")
    if args.model:
        from ..classify.model import pair_paths

        for f in pair_paths(args.model):
            if not f.is_file():
                raise InputError(f"--model {f}: no such file (a classifier is a .json + .npz)")
    apply_files = _apply_inputs(args.apply_to or ())
    inputs += [str(f) for f in apply_files]
    out = {"labels": None, "confidence": None, "model": None, "apply": []}
    out.update(files=args, params=params)
    seen: set[Path] = set()

    def claim(path: Path, name: str) -> Path:
        p = check_output(path, inputs=inputs, overwrite=args.overwrite, name=name)
        key = p.resolve()
        if key in seen:
            raise ParameterError(name, f"{p} would be written twice; choose other names")
        seen.add(key)
        return p

    if args.image:
        lab = Path(args.out)
        if lab.suffix.lower() not in LABEL_SUFFIXES:
            raise ParameterError(
                "--out", f"labels are written as .tif/.tiff, got {lab.suffix or '(none)'!r}"
            )
        conf = (
            Path(args.confidence)
            if args.confidence
            else lab.with_name(f"{lab.stem}_confidence{lab.suffix}")
        )
        if conf.suffix.lower() not in LABEL_SUFFIXES:
            raise ParameterError("--confidence", "the confidence is written as .tif/.tiff")
        out["labels"], out["confidence"] = claim(lab, "--out"), claim(conf, "--confidence")
    elif args.confidence:
        raise ParameterError("--confidence", "only with IMAGE and --out")
    if args.save_model:
        from ..classify.model import pair_paths

        js, npz = pair_paths(args.save_model)
        out["model"] = claim(js, "--save-model")
        claim(npz, "--save-model")
    out["apply_out"] = None
    if apply_files or args.watch:
        folder = (
            Path(args.apply_out)
            if args.apply_out
            else (Path(args.out).parent if args.out else None)
        )
        if folder is None:
            raise InputError("--apply-out FOLDER is required with --apply-to/--watch and no --out")
        if folder.exists() and not folder.is_dir():
            raise ParameterError("--apply-out", f"{folder} is a file, not a folder")
        if args.watch and (folder.exists() and same_file(folder, args.watch)):
            raise ParameterError(
                "--apply-out", f"{folder} is the watched folder: its labels would be read back"
            )
        out["apply_out"] = folder
        for f in apply_files:
            out["apply"].append(
                (
                    f,
                    claim(folder / f"{f.stem}_labels.tif", "--apply-out"),
                    claim(folder / f"{f.stem}_confidence.tif", "--apply-out"),
                )
            )
    elif args.apply_out and not args.watch:
        raise ParameterError("--apply-out", "only with --apply-to or --watch")
    return out


def _read(path, pixel_size=None):
    from ..io.micrograph import read_micrograph

    mic = read_micrograph(path)
    ps = pixel_size if pixel_size is not None else mic.pixel_size
    return mic.data, (float(ps) if ps else None)


def _read_scribbles(path, shape):
    import numpy as np

    from ..classify.workflow import check_scribbles
    from ..io.micrograph import read_micrograph

    data = np.asarray(read_micrograph(path).data)
    return check_scribbles(data, shape, name=str(path))


def _write(lab_path: Path, conf_path: Path, result) -> None:
    from ..io.tiff import write_tiff

    kw: dict = {"pixel_size": result.pixel_size, "unit": "Å"} if result.pixel_size else {}
    if result.labels.ndim == 3 and result.pixel_size:  # a series: frame index, then y, x
        from ..core.geometry import Grid

        ps = float(result.pixel_size)
        kw = {"grid": Grid((0.0, 0.0, 0.0), (1.0, ps, ps), "Å", "tyx")}
        kw["metadata"] = {"frames": int(result.labels.shape[0]), "frame_axis": "t (index)"}
    write_tiff(lab_path, result.labels, **kw)
    write_tiff(conf_path, result.confidence.astype("float32"), **kw)


def _apply_file(model, src: Path):
    """The classifier on every frame of ``src`` (one frame: as an image), at its pixel size."""
    from ..classify.workflow import apply_classifier, apply_to_frames
    from ..io.micrograph import read_frames

    first, frames = read_frames(src)
    ps = float(first.pixel_size) if first.pixel_size else None
    if len(frames) == 1:
        return apply_classifier(model, first.data, pixel_size=ps, unit="Å")
    return apply_to_frames(model, frames, pixel_size=ps, unit="Å")


def _watch(model, args, folder: Path, summaries: dict) -> None:
    """Label images as they appear in ``args.watch``; each result written atomically."""
    from ..core.outputs import check_output
    from ..io.folders import watch_folder

    claimed: set[str] = set()

    def on_image(src: Path) -> None:
        stem = src.stem
        lab, conf = folder / f"{stem}_labels.tif", folder / f"{stem}_confidence.tif"
        if stem in claimed:
            print(f"napari-interfaces: skipped {src}: {lab.name} was written for another "
                  "image of that name", file=sys.stderr, flush=True)  # fmt: skip
            return
        if not args.overwrite and (lab.exists() or conf.exists()):
            claimed.add(stem)
            print(
                f"{src.name}: already labelled ({lab.name}; --overwrite to redo)",
                file=sys.stderr,
                flush=True,
            )
            return
        for p in (lab, conf):
            check_output(p, inputs=[src], overwrite=args.overwrite, name="--apply-out")
        r = _apply_file(model, src)
        folder.mkdir(parents=True, exist_ok=True)
        _write(lab, conf, r)
        claimed.add(stem)
        summaries[str(lab)] = s = r.summary()
        if args.json:
            print(json.dumps({str(lab): s}, default=str), flush=True)
        else:
            _print_one(str(lab), s)

    def on_error(src: Path, exc: Exception) -> None:
        print(f"napari-interfaces: skipped {src}: {exc}", file=sys.stderr, flush=True)

    print(f"watching {args.watch} (Ctrl-C to stop) -> {folder}", file=sys.stderr, flush=True)
    try:
        watch_folder(
            args.watch, on_image, poll=args.poll, timeout=args.watch_timeout, on_error=on_error
        )
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)


def _print_one(path: str, s: dict) -> None:
    fr = ", ".join(f"{k}: {100 * v:.1f} %" for k, v in s["fractions"].items())
    notes = f" ({'; '.join(s['notes'])})" if s["notes"] else ""
    print(f"{path}: classes {fr}; mean confidence {s['mean_confidence']:.2f}{notes}", flush=True)


def run(args: argparse.Namespace) -> int:
    from ..classify.model import PixelClassifier
    from ..classify.workflow import apply_classifier, classify_image
    from ..core.errors import InputError

    outs = plan(args)
    args, params = outs["files"], outs["params"]
    summaries = {}
    if args.model:
        model = PixelClassifier.load(args.model)
        if args.image:
            img, ps = _read(args.image, params.pixel_size)
            res = apply_classifier(model, img, pixel_size=ps, unit="Å")
            _write(outs["labels"], outs["confidence"], res)
            summaries[str(outs["labels"])] = res.summary()
    else:
        img, ps = _read(args.image, params.pixel_size)
        scrib = _read_scribbles(args.scribbles, img.shape)
        try:
            res = classify_image(img, scrib, params.replace(pixel_size=ps), unit="Å")
        except InputError as exc:
            raise InputError(f"{args.scribbles}: {exc}") from None
        model = res.model
        _write(outs["labels"], outs["confidence"], res)
        summaries[str(outs["labels"])] = res.summary()
        if outs["model"]:
            model.extra["trained_on"] = str(Path(args.image).name)
            model.save(outs["model"])
    for src, lab, conf in outs["apply"]:
        r = _apply_file(model, src)
        lab.parent.mkdir(parents=True, exist_ok=True)
        _write(lab, conf, r)
        summaries[str(lab)] = r.summary()
    if args.json and args.watch:  # one JSON line per labelled image, as the watch prints them
        for path, summary in summaries.items():
            print(json.dumps({path: summary}, default=str), flush=True)
    elif args.json:
        print(json.dumps(summaries, indent=2, default=str), flush=True)
    else:
        for path, s in summaries.items():
            _print_one(path, s)
        if outs["model"]:
            print(f"classifier saved: {outs['model']} (+ .npz)", flush=True)
    if args.watch:
        watched: dict = {}
        _watch(model, args, outs["apply_out"], watched)
        print(  # with --json, stdout holds only the JSON lines
            f"{len(watched)} images labelled from {args.watch} -> {outs['apply_out']}",
            file=sys.stderr if args.json else sys.stdout,
        )
    return 0
