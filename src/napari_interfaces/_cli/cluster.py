"""``napari-interfaces cluster``: unsupervised segmentation by chip communities.

``cluster IMAGE --out LABELS.tif`` labels one image (several IMAGEs =
co-registered channels). ``cluster IMAGE --apply-to FOLDER --out DIR`` and
``cluster IMAGE --watch FOLDER --out DIR`` label a series with the
communities of the reference IMAGE, so the same kind of region gets the same
label in every image (see :mod:`napari_interfaces.cluster.series`).

Also ``cluster-apply`` (apply a model saved from corrections to images or a
folder).

Every parameter is checked before anything is read or written; outputs are
never an input, existing ones are replaced only with ``--overwrite``, and
every file is written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Label file formats by suffix.
LABEL_SUFFIXES = (".tif", ".tiff", ".png")


def register(groups: dict) -> None:
    p = groups["root"].add_parser(
        "cluster",
        help="unsupervised segmentation: chips, features, kNN graph, Louvain communities",
        description="Cut the image into chips, embed each chip, link similar chips in a cosine "
        "kNN graph, find Louvain communities and paint them back as a labels image. Several "
        "IMAGEs are co-registered channels of one specimen. With --apply-to or --watch the "
        "communities of IMAGE (the reference) label every image of a folder consistently.",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image file(s); several = channels")
    p.add_argument(
        "--chip",
        default="auto",
        help="chip side in pixels, or 'auto' (default): chosen from the image's length scales",
    )
    p.add_argument("--stride", default=None, help="chip step in pixels (default: auto, or chip/2)")
    p.add_argument(
        "--features",
        default="fft",
        choices=["fft", "filterbank", "resnet50", "learned"],
        help="chip features (default fft)",
    )
    p.add_argument(
        "--feature-weights",
        default="auto",
        metavar="auto|equal|none|GROUP=W,...",
        help="weights of the texture and intensity feature groups (balanced first so neither "
        "dominates): auto (default: from a first clustering), equal, none (columns one by one, "
        "no groups), or e.g. texture=1,intensity=0.5",
    )
    p.add_argument(
        "--weights", default=None, metavar="FILE", help="weights file for resnet50/learned"
    )
    p.add_argument(
        "--k",
        type=float,
        default=10,
        help="neighbours of every chip in the kNN graph (default 10; more = fewer communities)",
    )
    p.add_argument(
        "--resolution",
        type=float,
        default=1.0,
        help="Louvain resolution (default 1.0; higher = more, smaller communities)",
    )
    p.add_argument(
        "--merge-to", type=float, default=None, metavar="N", help="merge communities down to N"
    )
    p.add_argument("--seed", type=float, default=0, help="random seed (default 0)")
    p.add_argument(
        "--method",
        default="louvain",
        choices=["louvain", "leiden"],
        help="community detection (leiden needs the optional leidenalg)",
    )
    p.add_argument(
        "--spatial-weight",
        type=float,
        default=0.0,
        help="weight of edges between adjacent chips (default 0; higher = more compact regions)",
    )
    p.add_argument(
        "--pixel-size",
        type=float,
        default=None,
        metavar="Å",
        help="pixel size in Å written with the labels (default: read from the image file)",
    )
    p.add_argument("--clahe", action="store_true", help="CLAHE contrast normalization first")
    p.add_argument("--refine", action="store_true", help="refine community boundaries per pixel")
    series = p.add_argument_group("series (consistent labels across images)")
    series.add_argument(
        "--apply-to",
        default=None,
        metavar="FOLDER",
        help="label every image in FOLDER with the communities of IMAGE (default IMAGE: "
        "FOLDER's first image); --out is then a folder",
    )
    series.add_argument(
        "--watch",
        default=None,
        metavar="FOLDER",
        help="label images in FOLDER as they are written (stop with Ctrl-C or "
        "--watch-timeout); --out is then a folder",
    )
    series.add_argument(
        "--watch-timeout",
        type=float,
        default=None,
        metavar="S",
        help="stop watching after S seconds without a new image",
    )
    series.add_argument(
        "--poll", type=float, default=0.5, metavar="S", help="watch poll interval (default 0.5 s)"
    )
    series.add_argument(
        "--reference",
        default=None,
        metavar="REF.json",
        help="a series reference written by an earlier --apply-to/--watch run, instead of IMAGE",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="LABELS.tif|FOLDER",
        help="output labels (.tif, .tiff or .png; uint16), or a folder with --apply-to/--watch",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
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
    a.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    a.set_defaults(func=run_apply)


# ------------------------------------------------------------------ validation
def _feature_weights(text: str | None):
    from ..core.errors import ParameterError

    if text is None or text.strip().lower() in ("auto", "equal", "none"):
        return None if text is None else text.strip().lower()
    out = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ParameterError(
                "--feature-weights",
                f"expected auto, equal, none or GROUP=WEIGHT[,GROUP=WEIGHT], got {text!r}",
            )
    return out


def validate(args: argparse.Namespace) -> dict:
    """Check every parameter and path of ``cluster`` before anything is read or written.

    Returns the keyword arguments of
    :func:`napari_interfaces.cluster.pipeline.segment_by_communities`.
    """
    from ..cluster.pipeline import check_parameters
    from ..core.errors import InputError, ParameterError
    from ..core.params import positive

    kw = check_parameters(
        chip=args.chip,
        stride=args.stride,
        features=args.features,
        k=args.k,
        resolution=args.resolution,
        merge_to=args.merge_to,
        seed=args.seed,
        method=args.method,
        spatial_weight=args.spatial_weight,
        feature_weights=_feature_weights(args.feature_weights),
        pixel_size=args.pixel_size,
        cli=True,
    )
    series = args.apply_to or args.watch
    if args.apply_to and args.watch:
        raise ParameterError("--watch", "use either --apply-to or --watch, not both")
    if args.watch_timeout is not None:
        if not args.watch:
            raise ParameterError("--watch-timeout", "only with --watch")
        positive("--watch-timeout", args.watch_timeout)
    positive("--poll", args.poll)
    if args.reference and not series:
        raise ParameterError("--reference", "only with --apply-to or --watch")
    if args.reference and args.images:
        raise ParameterError("--reference", "give either a reference IMAGE or --reference")
    if not series and not args.images:
        raise InputError("no IMAGE given (or use --apply-to FOLDER / --watch FOLDER)")
    if series and len(args.images) > 1:
        raise ParameterError(
            "IMAGE",
            "--apply-to/--watch take one reference IMAGE (series of channels are not supported)",
        )
    if args.watch and not args.images and not args.reference:
        raise InputError("--watch needs a reference IMAGE (or --reference REF.json)")
    out = Path(args.out)
    if not series and out.suffix.lower() not in LABEL_SUFFIXES:
        raise ParameterError(
            "--out",
            f"unsupported suffix {out.suffix or '(none)'!r} for {out.name}; labels are written "
            f"as {', '.join(LABEL_SUFFIXES)}",
        )
    if series and out.suffix.lower() in LABEL_SUFFIXES:
        raise ParameterError("--out", f"{out} must be a folder with --apply-to/--watch")
    if args.weights is not None and not Path(args.weights).is_file():
        raise InputError(f"--weights {args.weights}: no such weights file")
    for f in args.images:
        if not Path(f).is_file():
            raise InputError(f"{f}: no such image file")
    for name, folder in (("--apply-to", args.apply_to), ("--watch", args.watch)):
        if folder is not None and not Path(folder).is_dir():
            raise InputError(f"{name} {folder}: no such folder")
    if args.reference and not Path(args.reference).is_file():
        raise InputError(f"--reference {args.reference}: no such file")
    return kw


def _cli_names(exc):
    """Re-spell an engine parameter name as the command line does."""
    from ..cluster.pipeline import CLI_NAMES
    from ..core.errors import ParameterError

    if isinstance(exc, ParameterError) and exc.name in CLI_NAMES:
        return ParameterError(CLI_NAMES[exc.name], str(exc)[len(exc.name) + 2 :])
    return exc


# ------------------------------------------------------------------ writing
def write_labels(path: Path, result) -> Path:
    """Write ``result.labels`` (uint16) atomically, in the format of ``path``'s suffix.

    TIFF keeps the pixel size (:func:`napari_interfaces.io.tiff.write_tiff`);
    PNG has no place for it.
    """
    import numpy as np

    labels = np.asarray(result.labels).astype(np.uint16)
    if path.suffix.lower() == ".png":
        import imageio.v3 as iio

        from ..core.outputs import atomic_file

        with atomic_file(path) as tmp:
            iio.imwrite(tmp, labels, extension=".png")
        return path
    from ..io.tiff import write_tiff

    if result.pixel_size:
        return write_tiff(path, labels, pixel_size=result.pixel_size, unit=result.unit)
    return write_tiff(path, labels)


def _print_result(res, out: Path, as_json: bool) -> None:
    if as_json:
        doc = res.summary()
        doc["out"] = str(out)
        print(json.dumps(doc, indent=2, default=str))
        return
    s = res.settings
    ps = f", pixel {res.pixel_size:.4g} {res.unit}" if res.pixel_size else ""
    print(
        f"{res.n_communities} communities ({res.n_detected} detected) over {res.grid.n_chips} "
        f"chips of {res.grid.chip} px, stride {res.grid.stride} ({s.get('chip_source', 'user')})"
        f"{ps} in {res.timings['total']:.2f} s -> {out}"
    )
    fw = s.get("feature_weighting")
    if fw and fw.get("groups"):
        parts = [
            f"{g} w={r['weight']:g} share={r['variance_share']:.2f}"
            for g, r in fw["groups"].items()
        ]
        print(f"feature weighting ({fw.get('mode')}): " + "; ".join(parts))
    print(f"{'id':>3} {'area':>7} {'chips':>6}  mean intensity")
    for row in res.table:
        mi = ", ".join(f"{v:.3f}" for v in row["mean_intensity"])
        print(f"{row['id']:>3} {row['area_fraction']:>7.3f} {row['chips']:>6}  {mi}")


def run(args: argparse.Namespace) -> int:
    from ..core.errors import InputError, ParameterError
    from ..core.outputs import check_output

    try:
        kw = validate(args)
    except ParameterError as exc:
        raise _cli_names(exc) from None
    if args.apply_to or args.watch:
        return _run_series(args, kw)
    out = check_output(args.out, inputs=args.images, overwrite=args.overwrite)
    res = _segment(args, args.images, kw)
    if not res.table:
        raise InputError("no communities found")
    write_labels(out, res)
    _print_result(res, out, args.json)
    return 0


def _segment(args, images, kw):
    from ..cluster.pipeline import segment_by_communities
    from ..core.errors import ParameterError
    from ..core.progress import cli_progress

    try:
        return segment_by_communities(
            images,
            progress=cli_progress(enabled=not args.json and sys.stderr.isatty()),
            weights=args.weights,
            clahe=args.clahe,
            refine=args.refine,
            **kw,
        )
    except ParameterError as exc:
        raise _cli_names(exc) from None


# ------------------------------------------------------------------ series
def _label_name(p: Path, used: set) -> str:
    name = f"{p.stem}_labels.tif"
    if name in used:
        name = f"{p.stem}_{p.suffix.lstrip('.').lower()}_labels.tif"
    i = 2
    base = name
    while name in used:
        name = base.replace("_labels.tif", f"_{i}_labels.tif")
        i += 1
    used.add(name)
    return name


def _ours(p: Path) -> bool:
    return p.is_file() and (
        p.name.endswith("_labels.tif")
        or p.name in ("reference.json", "reference.npz", "summary.json")
    )


def _check_ours(out: Path) -> None:
    """Refuse to replace a folder holding files this command did not write."""
    from ..core.errors import OutputExistsError
    from ..core.outputs import TMP_MARK

    if not out.is_dir():
        return
    other = [p for p in out.iterdir() if not _ours(p) and TMP_MARK not in p.name]
    if other:
        raise OutputExistsError(
            f"--out {out} holds files this command did not write (e.g. {other[0].name}); "
            "choose another output folder"
        )


def _row(path: Path, res, name: str) -> dict:
    return {
        "image": str(path),
        "labels": name,
        "n_communities": res.n_communities,
        "new_ids": res.settings.get("series", {}).get("new_ids", []),
        "area_fraction": {str(r["id"]): r["area_fraction"] for r in res.table},
        "seconds": round(res.timings["total"], 3),
    }


def _write_json(path: Path, doc: dict) -> None:
    from ..core.outputs import atomic_file

    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")


def _run_series(args, kw) -> int:
    from ..cluster.series import (
        IMAGE_SUFFIXES,
        SeriesReference,
        label_folder,
        list_images,
        watch_folder,
    )
    from ..core.errors import InputError, OutputExistsError
    from ..core.outputs import TMP_MARK, atomic_dir, check_output, cleanup_stale, same_file

    folder = Path(args.apply_to or args.watch)
    out = Path(args.out)
    if same_file(out, folder) or (out.exists() and same_file(out, folder)):
        raise OutputExistsError(f"--out {out} is the input folder; choose another output folder")
    files = list_images(folder)
    inputs = [*args.images, *files] + ([args.reference] if args.reference else [])
    check_output(out, inputs=inputs, overwrite=args.overwrite)
    if args.apply_to and not files and not args.images:
        raise InputError(f"--apply-to {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    _check_ours(out)

    ref_result = None
    if args.reference:
        reference = SeriesReference.load(args.reference)
        ref_path = None
    else:
        ref_path = Path(args.images[0]) if args.images else files[0]
        ref_result = _segment(args, [ref_path], kw)
        reference = SeriesReference.from_result(ref_result)
    summary = {
        "reference": str(args.reference or ref_path),
        "chip": reference.chip,
        "stride": reference.stride,
        "chip_source": reference.settings.get("chip_source", "user"),
        "features": reference.extractor,
        "feature_weighting": reference.transform.report,
        "images": [],
    }
    used: set = set()

    def emit(dest: Path, path: Path, res) -> None:
        name = _label_name(path, used)
        write_labels(dest / name, res)
        row = _row(path, res, name)
        summary["images"].append(row)
        if args.json:
            print(json.dumps(row, default=str), flush=True)
        else:
            new = f", new ids {row['new_ids']}" if row["new_ids"] else ""
            print(
                f"{path.name}: {res.n_communities} communities{new}, "
                f"{res.timings['total']:.2f} s -> {dest.name}/{name}",
                flush=True,
            )

    def finish(dest: Path) -> None:
        from ..core.outputs import verify_files

        verify_files(dest, [row["labels"] for row in summary["images"]])  # none removed
        reference.save(dest / "reference.json")
        _write_json(dest / "summary.json", summary)

    if args.apply_to:
        todo = [f for f in files if ref_path is None or not same_file(f, ref_path)]
        with atomic_dir(out) as tmp:
            if ref_result is not None:
                emit(tmp, ref_path, ref_result)
            label_folder(
                reference, todo, lambda p, r: emit(tmp, p, r), pixel_size=kw["pixel_size"]
            )
            finish(tmp)
        print(f"{len(summary['images'])} images labelled -> {out}")
        return 0

    # --watch: results appear one by one (each file atomic) in the folder
    out.mkdir(parents=True, exist_ok=True)
    cleanup_stale(out)
    for old in out.iterdir():  # --overwrite: no stale results of an earlier run survive
        if TMP_MARK not in old.name and not old.is_dir():  # another run's temporaries stay
            old.unlink()
    if ref_result is not None:
        emit(out, ref_path, ref_result)
    finish(out)

    def on_image(p: Path) -> None:
        if ref_path is not None and same_file(p, ref_path):
            return
        emit(out, p, reference.label(p, pixel_size=kw["pixel_size"]))
        finish(out)

    def on_error(p: Path, exc: Exception) -> None:
        print(f"napari-interfaces: skipped {p}: {exc}", file=sys.stderr, flush=True)

    print(f"watching {folder} (Ctrl-C to stop) -> {out}", file=sys.stderr, flush=True)
    try:
        watch_folder(
            folder,
            on_image,
            poll=args.poll,
            timeout=args.watch_timeout,
            on_error=on_error,
        )
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finish(out)
    print(f"{len(summary['images'])} images labelled -> {out}")
    return 0


# ------------------------------------------------------------------ cluster-apply
def run_apply(args: argparse.Namespace) -> int:
    from ..cluster.corrections import CorrectionModel, apply_model, apply_to_folder
    from ..core.errors import InputError
    from ..core.outputs import atomic_dir, check_output

    model = CorrectionModel.load(args.model)
    items = [Path(i) for i in args.inputs]
    for p in items:
        if not (p.is_dir() or p.is_file()):
            raise InputError(f"{p}: no such image or folder")
    files = [p for p in items if p.is_file()]
    out = check_output(
        args.out,
        inputs=[*files, *[p for p in items if p.is_dir()], Path(args.model)],
        overwrite=args.overwrite,
    )
    _check_ours(out)
    written = []
    with atomic_dir(out) as tmp:
        for p in items:
            if p.is_dir():
                written += [out / w.name for w in apply_to_folder(model, p, tmp)]
            else:
                import numpy as np

                from ..io.tiff import write_tiff

                labels, _ = apply_model(model, p)
                dst = write_tiff(tmp / f"{p.stem}_labels.tif", labels.astype(np.uint16))
                written.append(out / dst.name)
    for w in written:
        print(w)
    return 0
