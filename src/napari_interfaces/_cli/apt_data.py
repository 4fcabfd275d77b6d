"""``napari-interfaces apt info | synth | voxelize``: APT data on the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(groups: dict) -> None:
    from ..apt.workflows import (
        ExploreParams,
        InfoFiles,
        SynthFiles,
        SynthParams,
        VoxelizeFiles,
    )
    from ._spec import add_command

    apt = groups["apt"]
    add_command(
        apt,
        "info",
        run_info,
        InfoFiles,
        help="ion count, bounds, mass range and (with ranges) atomic composition",
        description="Print the ion count, bounds (nm) per axis, mass range (Da) and, with a "
        "range file, the decomposed atomic composition (at.%) and the ranged fraction.",
    )

    add_command(
        apt,
        "synth",
        run_synth,
        SynthFiles,
        SynthParams,
        help="write a synthetic APT specimen with ground truth",
        description="Generate an fcc Ni-Al-Cr specimen with L1_2 precipitates and a known "
        "diffuse interface profile; writes .pos, .rrng, the ground-truth phase volume (TIFF), "
        "the true profiles (CSV) and the parameters (JSON).",
    )

    add_command(
        apt,
        "voxelize",
        run_voxelize,
        VoxelizeFiles,
        ExploreParams,
        help="composition volumes (at.%%) per element as TIFF",
        description="Range and voxelize a point cloud; writes one at.% TIFF per element "
        "(<stem>_<El>_at_pct.tif) with voxel size metadata, and with --counts the ion "
        "counts per species.",
    )


def _write_files(
    out: Path,
    names: list[str],
    write,
    *,
    inputs: list[str],
    overwrite: bool,
) -> list[Path]:
    """Check every output ``out/<name>``, run ``write(tmp_folder)``, move the files in.

    Each output is checked before anything is written (an input is never
    replaced; an existing file only with ``--overwrite``); ``write`` writes
    into a temporary folder inside ``out`` and each file then replaces its
    destination with :func:`os.replace` (no half-written file under a final
    name; the temporary folder is removed on failure).
    """
    import os

    from ..core.outputs import check_output, cleanup_stale, output_path, temp_dir

    if out.exists() and not out.is_dir():
        from ..core.errors import OutputExistsError

        raise OutputExistsError(f"--out {out}: is a file, expected a folder")
    for nm in names:
        check_output(output_path(out, nm), inputs, overwrite=overwrite)
    out.mkdir(parents=True, exist_ok=True)
    cleanup_stale(out)
    with temp_dir(out / (out.name or "out")) as tmp:
        write(tmp)
        produced = sorted(p.name for p in tmp.iterdir())
        unexpected = sorted(set(produced) - set(names))
        if unexpected:  # a writer named a file differently: check it too
            for nm in unexpected:
                check_output(output_path(out, nm), inputs, overwrite=overwrite)
        written = []
        for nm in produced:
            os.replace(tmp / nm, output_path(out, nm))
            written.append(out / nm)
        return written


def _print_warnings(warnings: list[str]) -> None:
    import sys

    for w in warnings:
        print(f"napari-interfaces: warning: {w}", file=sys.stderr)


def info_dict(file: str, ranges: str | None = None, progress=None) -> dict:
    """What ``apt info --json`` prints (:func:`napari_interfaces.apt.workflows.dataset_info`)."""
    from ..apt.workflows import dataset_info

    return dataset_info(file, ranges, progress=progress)


def run_info(args: argparse.Namespace) -> int:
    import math
    import warnings

    from ..core.progress import cli_progress

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow: reported below, one line
        info = info_dict(
            str(args.file),
            None if args.ranges is None else str(args.ranges),
            progress=cli_progress(enabled=not args.json),
        )
    comp = info.get("composition_at_pct") or {}
    bad = sorted(el for el, v in comp.items() if not math.isfinite(float(v)))
    if bad:
        from ..core.errors import InputError

        raise InputError(
            f"{info.get('range_file') or args.ranges}: the composition of {', '.join(bad)} is not "
            "a finite number (an element count in the range file is too large)"
        )
    if args.json:
        print(json.dumps(info, allow_nan=False))
        return 0
    _print_warnings(info.get("warnings", []))
    print(f"{args.file}: {info['ions']:,} ions")
    for ax, (lo, hi) in info["bounds_nm"].items():
        print(f"  {ax}: {lo:.3f} .. {hi:.3f} nm")
    lo, hi = info["mass_range_da"]
    print(f"  mass-to-charge: {lo:.3f} .. {hi:.3f} Da")
    if info["composition_at_pct"] is not None:
        print(f"composition (at.%, molecular ions decomposed; ranges {args.ranges}):")
        for el, v in sorted(info["composition_at_pct"].items(), key=lambda t: -t[1]):
            print(f"  {el:>3}: {v:8.4f}")
        print(f"ranged fraction: {info['ranged_fraction']:.4f}")
        for sp, n in (info.get("known_unranged") or {}).items():
            print(f"  unranged-but-known {sp}: {n:,} ions (not in the composition)")
    return 0


def run_synth(args: argparse.Namespace) -> int:
    from ..apt.workflows import SynthFiles, SynthParams, check_synth_memory, synthesize_specimen
    from ..core.outputs import check_output
    from ..core.progress import cli_progress
    from ._spec import spec_from_args

    p = spec_from_args(SynthParams, args)
    files = spec_from_args(SynthFiles, args)
    out = files.required("out", what="an output folder")
    check_synth_memory(p)
    stem = f"synthetic_{p.geometry}_seed{p.seed}"
    names = [f"{stem}{x}" for x in (".pos", ".rrng", "_phase.tif", "_profile.csv", "_truth.json")]
    for nm in names:  # refuse before the (long) synthesis
        check_output(out / nm, overwrite=files.overwrite)
    s = synthesize_specimen(p, progress=cli_progress())
    written = _write_files(
        out,
        names,
        lambda tmp: s.write(tmp, stem=stem, voxel_size=p.voxel_size),
        inputs=[],
        overwrite=files.overwrite,
    )
    print(f"{s.cloud.n_ions:,} ions, geometry {p.geometry}, seed {p.seed}")
    for path in written:
        print(f"  {path}")
    return 0


def plan_voxelize(args: argparse.Namespace) -> dict:
    """Every ``apt voxelize`` parameter and output, checked before the point cloud is read."""
    from ..apt.workflows import ExploreParams, VoxelizeFiles
    from ..core.errors import ParameterError
    from ..io.ranges import find_range_file, read_ranges
    from ._spec import spec_from_args

    params = spec_from_args(ExploreParams, args)
    files = spec_from_args(VoxelizeFiles, args)
    out = files.required("out", what="an output folder")
    file = str(files.file)
    rf = files.ranges or find_range_file(file)
    if rf is None:
        raise ParameterError(
            "ranges",
            f"no range file given and none with the stem of {file} found (.rrng/.rng/.env)",
        )
    rt = read_ranges(rf)
    elements = list(params.elements or rt.elements)
    unknown = [e for e in elements if e not in rt.elements]
    if unknown:
        raise ParameterError("elements", f"{unknown} are not in the ranges (have {rt.elements})")
    params = params.replace(elements=tuple(elements))
    from ..core.outputs import check_output, output_path, safe_names

    # element and species names come from the range file: one safe file name each
    stem = Path(file).stem
    names_el = {el: f"{stem}_{nm}_at_pct.tif" for el, nm in zip(elements, safe_names(elements))}
    counts = {}
    if files.counts:
        sp = rt.species
        counts = {s: f"{stem}_{nm}_counts.tif" for s, nm in zip(sp, safe_names(sp))}
    names = [*names_el.values(), *counts.values()]
    inputs = [file, str(rf)]
    for nm in names:  # the folder may hold the inputs; no output may be one
        check_output(output_path(out, nm), inputs, overwrite=files.overwrite)
    return {
        "params": params,
        "files": files,
        "out": out,
        "ranges": rt,
        "names": names,
        "element_files": names_el,
        "count_files": counts,
        "inputs": inputs,
    }


def run_voxelize(args: argparse.Namespace) -> int:
    import warnings

    from ..apt.dataset import RangingWarning
    from ..apt.workflows import explore
    from ..core.progress import cli_progress
    from ..io.apt_volume import write_volume_tiff

    plan = plan_voxelize(args)
    params, files = plan["params"], plan["files"]
    with warnings.catch_warnings():  # printed once below, as one line
        warnings.simplefilter("ignore", RangingWarning)
        res = explore(
            str(files.file), plan["ranges"], params, progress=cli_progress(), spectrum=False
        )
    _print_warnings(res.dataset.warnings)
    vox = res.vox
    meta = {
        "source": str(files.file),
        "ranges": str(plan["ranges"].source),
        "delocalization_nm_zyx": params.delocalization_zyx,
    }

    def write(tmp: Path) -> None:
        for el in params.elements:
            write_volume_tiff(
                tmp / plan["element_files"][el],
                vox.composition(el),
                vox.grid,
                {**meta, "quantity": f"{el} at.%"},
            )
        if files.counts:
            for sp in vox.species:
                write_volume_tiff(
                    tmp / plan["count_files"][sp],
                    vox.species_counts(sp),
                    vox.grid,
                    {**meta, "quantity": f"{sp} ions"},
                )

    written = _write_files(
        plan["out"], plan["names"], write, inputs=plan["inputs"], overwrite=files.overwrite
    )
    print(
        f"grid {vox.shape} (z, y, x), voxel {params.voxel_size:g} nm, origin {vox.grid.origin} nm"
    )
    for path in written:
        print(f"  {path}")
    return 0
