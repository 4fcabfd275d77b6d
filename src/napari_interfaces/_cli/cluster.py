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

from ._spec import spec_from_args

#: Label file formats by suffix.
LABEL_SUFFIXES = (".tif", ".tiff", ".png")


def register(groups: dict) -> None:
    from ..cluster.corrections import ApplyFiles
    from ..cluster.pipeline import ClusterFiles, ClusterParams
    from ._spec import add_command

    add_command(
        groups["root"],
        "cluster",
        run,
        ClusterFiles,
        ClusterParams,
        help="unsupervised segmentation: chips, features, kNN graph, Louvain communities",
        description="Cut the image into chips, embed each chip, link similar chips in a cosine "
        "kNN graph, find Louvain communities and paint them back as a labels image. Several "
        "IMAGEs are co-registered channels of one specimen. With --apply-to or --watch the "
        "communities of IMAGE (the reference) label every image of a folder consistently.",
    )

    add_command(
        groups["root"],
        "cluster-apply",
        run_apply,
        ApplyFiles,
        help="apply a model learned from corrections to images or a folder",
        description="Label images with a model saved by the Chip communities dock "
        "('Learn from corrections'): MODEL.json + MODEL.npz.",
    )


# ------------------------------------------------------------------ validation
def _flag(name: str) -> str:
    from ..cluster.pipeline import ClusterFiles

    return ClusterFiles.param_of(name).cli_flag


def plan(args: argparse.Namespace):
    """Check every parameter and path of ``cluster`` before anything is read or written.

    Returns ``(files, params)``: the validated :class:`~.cluster.pipeline.ClusterFiles`
    and :class:`~.cluster.pipeline.ClusterParams`.
    """
    from ..cluster.pipeline import ClusterFiles, ClusterParams
    from ..core.errors import InputError, ParameterError

    params = spec_from_args(ClusterParams, args)
    files = spec_from_args(ClusterFiles, args)
    images = list(files.images or ())
    series = files.apply_to or files.watch
    files.required("out", what="the output labels, or a folder")
    if files.apply_to and files.watch:
        raise ParameterError("watch", "use either --apply-to or --watch, not both")
    if files.watch_timeout is not None and not files.watch:
        raise ParameterError("watch_timeout", "only with --watch")
    if files.reference and not series:
        raise ParameterError("reference", "only with --apply-to or --watch")
    if files.reference and images:
        raise ParameterError("reference", "give either a reference IMAGE or --reference")
    if not series and not images:
        raise InputError("no IMAGE given (or use --apply-to FOLDER / --watch FOLDER)")
    if series and len(images) > 1:
        raise ParameterError(
            "images",
            "--apply-to/--watch take one reference IMAGE (series of channels are not supported)",
        )
    if files.watch and not images and not files.reference:
        raise InputError("--watch needs a reference IMAGE (or --reference REF.json)")
    out = files.out
    if not series and out.suffix.lower() not in LABEL_SUFFIXES:
        raise ParameterError(
            "out",
            f"unsupported suffix {out.suffix or '(none)'!r} for {out.name}; labels are written "
            f"as {', '.join(LABEL_SUFFIXES)}",
        )
    if series and out.suffix.lower() in LABEL_SUFFIXES:
        raise ParameterError("out", f"{out} must be a folder with --apply-to/--watch")
    if params.weights is not None and not params.weights.is_file():
        raise InputError(f"--weights {params.weights}: no such weights file")
    for f in images:
        if not f.is_file():
            raise InputError(f"{f}: no such image file")
    for name, folder in (("apply_to", files.apply_to), ("watch", files.watch)):
        if folder is not None and not folder.is_dir():
            raise InputError(f"{_flag(name)} {folder}: no such folder")
    if files.reference and not files.reference.is_file():
        raise InputError(f"--reference {files.reference}: no such file")
    return files, params


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
    from ..core.errors import InputError
    from ..core.outputs import check_output

    files, params = plan(args)
    if files.apply_to or files.watch:
        return _run_series(files, params)
    out = check_output(files.out, inputs=list(files.images), overwrite=files.overwrite)
    res = _segment(files, list(files.images), params)
    if not res.table:
        raise InputError("no communities found")
    write_labels(out, res)
    _print_result(res, out, files.json)
    return 0


def _segment(files, images, params):
    from ..cluster.pipeline import segment_by_communities
    from ..core.progress import cli_progress

    progress = cli_progress(enabled=not files.json)  # (no bar without a terminal)
    return segment_by_communities(images, params, progress=progress)


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


def _run_series(fs, params) -> int:
    from ..cluster.series import (
        IMAGE_SUFFIXES,
        SeriesReference,
        label_folder,
        list_images,
        watch_folder,
    )
    from ..core.errors import InputError, OutputExistsError
    from ..core.outputs import TMP_MARK, atomic_dir, check_output, cleanup_stale, same_file

    folder = Path(fs.apply_to or fs.watch)
    out = Path(fs.out)
    images = list(fs.images or ())
    if same_file(out, folder) or (out.exists() and same_file(out, folder)):
        raise OutputExistsError(f"--out {out} is the input folder; choose another output folder")
    files = list_images(folder)
    inputs = [*images, *files] + ([fs.reference] if fs.reference else [])
    check_output(out, inputs=inputs, overwrite=fs.overwrite)
    if fs.apply_to and not files and not images:
        raise InputError(f"--apply-to {folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    _check_ours(out)

    ref_result = None
    if fs.reference:
        reference = SeriesReference.load(fs.reference)
        ref_path = None
    else:
        ref_path = Path(images[0]) if images else files[0]
        ref_result = _segment(fs, [ref_path], params)
        reference = SeriesReference.from_result(ref_result)
    summary = {
        "reference": str(fs.reference or ref_path),
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
        if fs.json:
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

    if fs.apply_to:
        todo = [f for f in files if ref_path is None or not same_file(f, ref_path)]
        with atomic_dir(out) as tmp:
            if ref_result is not None:
                emit(tmp, ref_path, ref_result)
            label_folder(
                reference, todo, lambda p, r: emit(tmp, p, r), pixel_size=params.pixel_size
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
        emit(out, p, reference.label(p, pixel_size=params.pixel_size))
        finish(out)

    def on_error(p: Path, exc: Exception) -> None:
        print(f"napari-interfaces: skipped {p}: {exc}", file=sys.stderr, flush=True)

    print(f"watching {folder} (Ctrl-C to stop) -> {out}", file=sys.stderr, flush=True)
    try:
        watch_folder(
            folder,
            on_image,
            poll=fs.poll,
            timeout=fs.watch_timeout,
            on_error=on_error,
        )
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finish(out)
    print(f"{len(summary['images'])} images labelled -> {out}")
    return 0


# ------------------------------------------------------------------ cluster-apply
def run_apply(args: argparse.Namespace) -> int:
    from ..cluster.corrections import ApplyFiles, CorrectionModel, apply_model, apply_to_folder
    from ..core.errors import InputError
    from ..core.outputs import atomic_dir, check_output

    fs = spec_from_args(ApplyFiles, args)
    fs.required("out", what="the output folder")
    model = CorrectionModel.load(fs.model)
    items = list(fs.inputs)
    for p in items:
        if not (p.is_dir() or p.is_file()):
            raise InputError(f"{p}: no such image or folder")
    files = [p for p in items if p.is_file()]
    out = check_output(
        fs.out,
        inputs=[*files, *[p for p in items if p.is_dir()], fs.model],
        overwrite=fs.overwrite,
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
