"""APT engine workflows: one function per command or dock button.

The CLI (``apt info``, ``apt voxelize``, ``apt segment``), the dask batch
(:func:`napari_interfaces.apt.batch.segment_file`) and the docks (APT
explorer, Interfaces) all call these functions; they take plain parameters
and a ``progress`` (which can cancel) and return a result object holding
arrays, the voxel :class:`~napari_interfaces.core.geometry.Grid` (nm),
tables and provenance. Nothing here imports Qt or napari.

* :class:`ExploreParams`, :class:`SegmentParams`, :class:`SynthParams`: every
  parameter of a command declared once (:mod:`napari_interfaces.core.spec`),
  checked when the spec is made, before anything is read or written
  (one-line :class:`~napari_interfaces.core.errors.ParameterError` naming
  the field); the CLI options and the docks' forms are generated from them.
* :func:`dataset_info`: ion count, bounds, mass range, composition.
* :func:`explore`: ranged composition volumes (+ the mass spectrum).
* :func:`prepare_interfaces`: atoms and composition voxels for the interface methods.
* :func:`segment_dataset`: phases (HED, iso, GMM) and the proxigram.
* :func:`profiles`: proxigram, phase table and cylinder profile of (edited) labels.

Examples
--------
>>> from napari_interfaces.apt.workflows import SegmentParams
>>> SegmentParams(method="iso", axes="ZYX", voxel=1.0).axes
'zyx'
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ParameterError
from ..core.geometry import Grid
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from .dataset import APTDataset, open_dataset
from .interfaces import METHODS  # the one list of methods

__all__ = [
    "METHODS",
    "ExploreParams",
    "ExploreResult",
    "InfoFiles",
    "InterfacesRun",
    "ProfilesParams",
    "ProfilesResult",
    "SegmentParams",
    "SynthFiles",
    "SynthParams",
    "VoxelizeFiles",
    "check_synth_memory",
    "dataset_info",
    "explore",
    "prepare_interfaces",
    "profiles",
    "reload_labels",
    "result_summary",
    "segment_dataset",
    "synthesize_specimen",
]

#: Smallest voxel edge accepted (nm): well below the ion spacing (~0.25 nm).
MIN_VOXEL_NM = 0.05
#: Largest voxel edge accepted (nm); a tip is at most a few hundred nm wide.
MAX_VOXEL_NM = 100.0
#: Largest delocalization distance accepted (nm).
MAX_DELOCALIZATION_NM = 100.0

_VOXEL = {"unit": "nm", "lo": MIN_VOXEL_NM, "hi": MAX_VOXEL_NM, "step": 0.1}


# ---------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class InfoFiles(Spec):
    """Inputs and output switches of ``apt info``."""

    file: Path | None = param(
        None, "point cloud: .pos .epos .apt .ato .csv .txt", positional=True, metavar="FILE"
    )
    ranges: Path | None = param(None, "range file: .rrng .rng .env", gui=False)
    json: bool = param(False, "print one JSON object", gui=False)


@dataclass(frozen=True)
class ExploreParams(Spec):
    """Voxelization of a ranged point cloud (APT explorer, ``apt voxelize``)."""

    voxel_size: float = param(
        1.0,
        "voxel edge; edges sit at multiples of it, so the Interfaces dock uses the same grid "
        "for the same size",
        alias="voxel",
        label="voxel",
        **_VOXEL,
    )
    delocalization_xyz: tuple[float, ...] | None = param(
        None,
        "Gaussian delocalization distances x, y, z as in AP Suite (sigma = d / 3), total counts "
        "kept, e.g. 3 3 1.5",
        unit="nm",
        lo=0,
        hi=MAX_DELOCALIZATION_NM,
        none="off",
        nargs="+",
        alias="delocalization",
        label="delocalization x, y, z",
        metavar="D",
        advanced=True,
    )
    elements: tuple[str, ...] | None = param(
        None,
        "only these elements",
        item=str,
        none="all",
        nargs="+",
        metavar="EL",
        gui=False,
    )

    def check(self) -> None:
        d = self.delocalization_xyz
        if d is not None and len(d) != 3:
            raise ParameterError(
                "delocalization_xyz", f"expected 3 distances (x, y, z), got {len(d)}"
            )

    @property
    def delocalization_zyx(self) -> tuple[float, float, float] | None:
        """The delocalization in the volume's axis order (z, y, x)."""
        d = self.delocalization_xyz
        return None if d is None else (d[2], d[1], d[0])


@dataclass(frozen=True)
class VoxelizeFiles(Spec):
    """Inputs and outputs of ``apt voxelize``."""

    file: Path | None = param(
        None, "point cloud: .pos .epos .apt .ato .csv .txt", positional=True, metavar="FILE"
    )
    ranges: Path | None = param(None, "range file (default: same stem beside FILE)", gui=False)
    counts: bool = param(False, "also write the ion counts per species", gui=False)
    out: Path | None = param(None, "output folder (required)", gui=False)
    overwrite: bool = param(False, "replace existing output files", gui=False)


@dataclass(frozen=True)
class SegmentParams(Spec):
    """Phases and interfaces of a dataset (``apt segment``, the Interfaces dock, the batch)."""

    method: str = param(
        "auto",
        "auto: iso-concentration detection, touching particles split, each precipitate re-drawn "
        "with the volume of its solute excess (best on small precipitates); hed: deep-learning "
        "edges on composition slices (HED fine-tuned on synthetic APT); iso: threshold of the "
        "most varying element; gmm: Gaussian mixture of voxel compositions",
        choices=METHODS,
        choice_labels={
            "auto": "auto (iso + mass-conserving precipitates)",
            "hed": "HED edges (deep learning)",
            "iso": "iso-concentration",
            "gmm": "Gaussian mixture",
        },
    )
    axes: str = param(
        "zyx",
        "HED only: slicing axes, z, y, x or a combination (zyx averages all three)",
        alias="axis",
        label="slicing axes",
        advanced=True,
    )
    voxel: float = param(
        1.0,
        "voxel edge of the composition volume (same grid as the APT explorer for the same "
        "size); smaller = finer but noisier",
        **_VOXEL,
    )
    bin_nm: float = param(
        0.25, "proxigram bin width", unit="nm", lo=0, lo_open=True, hi=10.0, alias="bin"
    )
    weights: str = param(
        "auto",
        "HED weights: auto, finetuned, bsds500 or a .pt path (method hed only)",
        advanced=True,
        gui=False,
    )

    def check(self) -> None:
        ax = self.axes.strip().lower()
        if not ax or any(a not in "zyx" for a in ax) or len(set(ax)) != len(ax):
            raise ParameterError(
                "axes", f"must be made of z, y, x (each at most once); got {self.axes!r}"
            )
        object.__setattr__(self, "axes", ax)
        if self.method != "hed" and self.weights not in ("auto", ""):
            raise ParameterError("weights", f"is used only with method hed, not {self.method}")


#: Atoms per nm³ of the synthetic fcc Ni-Al-Cr specimen (a generous bound).
_ATOMS_PER_NM3 = 100.0
#: Bytes per generated ion while synthesizing (positions, masses, labels, work arrays).
_BYTES_PER_ION = 96


@dataclass(frozen=True)
class SynthParams(Spec):
    """A synthetic fcc Ni-Al-Cr specimen with known truth (``apt synth``)."""

    geometry: str = param(
        "layered", "specimen geometry", choices=("layered", "isolated", "interconnected")
    )
    seed: int = param(0, "random seed", lo=0)
    size_nm: tuple[float, ...] = param(
        (20.0, 20.0, 40.0),
        "box size x, y, z",
        unit="nm",
        lo=0,
        lo_open=True,
        hi=2000.0,
        nargs="+",
        alias="size",
        metavar="NM",
    )
    width_nm: float = param(
        1.0, "10-90% interface width", unit="nm", lo=0, hi=100.0, alias="width"
    )
    efficiency: float = param(0.5, "detection efficiency", lo=0, lo_open=True, hi=1)
    noise_lateral_nm: float = param(
        0.3, "x/y noise sigma", unit="nm", lo=0, hi=100.0, alias="noise_lateral"
    )
    noise_depth_nm: float = param(
        0.1, "z noise sigma", unit="nm", lo=0, hi=100.0, alias="noise_depth"
    )
    background: float = param(0.03, "background ion fraction", lo=0, hi=1, hi_open=True)
    radius_nm: float = param(
        3.0,
        "precipitate radius (isolated)",
        unit="nm",
        lo=0,
        lo_open=True,
        hi=1000.0,
        alias="radius",
    )
    period_nm: float | None = param(
        None,
        "plate period (layered) or network period (interconnected), at most 4 x the box",
        unit="nm",
        lo=1.0,
        none="auto",
        alias="period",
    )
    voxel_size: float = param(1.0, "voxel edge of the phase volume", alias="voxel", **_VOXEL)

    def check(self) -> None:
        if len(self.size_nm) != 3:
            raise ParameterError("size_nm", f"expected 3 sizes (x, y, z), got {len(self.size_nm)}")
        top = 4 * max(self.size_nm)
        if self.period_nm is not None and self.period_nm > top:
            raise ParameterError(
                "period_nm", f"must be in [1, {top:g}] (4 x the box), got {self.period_nm:g}"
            )


@dataclass(frozen=True)
class SynthFiles(Spec):
    """Outputs of ``apt synth``."""

    out: Path | None = param(None, "output folder (required)", gui=False)
    overwrite: bool = param(False, "replace existing output files", gui=False)


def check_synth_memory(params: SynthParams) -> None:
    """Refuse a specimen or phase volume over the memory limit (before any work)."""
    from ..core.limits import check_bytes

    size = params.size_nm
    n_ions = _ATOMS_PER_NM3 * float(np.prod(size)) * params.efficiency / (1 - params.background)
    check_bytes(
        n_ions * _BYTES_PER_ION, f"synthetic specimen of {list(size)} nm (~{n_ions:.3g} ions)"
    )
    nvox = float(np.prod([np.ceil(s / params.voxel_size) + 1 for s in size]))
    check_bytes(nvox * 8, f"phase volume of {list(size)} nm at {params.voxel_size:g} nm voxels")


def synthesize_specimen(
    params: SynthParams | None = None, *, progress: Progress | None = None, **values: Any
):
    """A synthetic specimen (:func:`napari_interfaces.apt.synthetic.synthesize`) from a spec.

    The memory needed is checked first (:func:`check_synth_memory`).
    """
    from .synthetic import synthesize

    p = SynthParams.of(params, **values)
    check_synth_memory(p)
    return synthesize(
        p.geometry,
        size_nm=p.size_nm,
        seed=p.seed,
        width_nm=p.width_nm,
        efficiency=p.efficiency,
        noise_lateral_nm=p.noise_lateral_nm,
        noise_depth_nm=p.noise_depth_nm,
        background=p.background,
        radius_nm=p.radius_nm,
        period_nm=p.period_nm,
        progress=progress,
    )


def _dataset(
    data: APTDataset | str | os.PathLike, ranges=None, progress: Progress | None = None
) -> APTDataset:
    if isinstance(data, APTDataset):
        return data
    return open_dataset(data, ranges, progress=progress, require_ranges=True)


# ---------------------------------------------------------------------- info
def dataset_info(
    path: str | os.PathLike, ranges: str | os.PathLike | None = None, progress=None
) -> dict[str, Any]:
    """What ``apt info`` prints as JSON: ions, bounds (nm), mass range (Da), composition.

    Ranges are used when given (``ranges``); a range file beside the cloud
    is not looked up (``apt info`` describes the file as it is).
    """
    ds = open_dataset(path, ranges, progress=progress, find_ranges=False, warn=False)
    b = ds.cloud.bounds()
    comp = ds.composition
    return {
        "ions": ds.n_ions,
        "bounds_nm": {ax: [b[ax][0], b[ax][1]] for ax in "xyz"},
        "mass_range_da": list(ds.cloud.mass_range()),
        "composition_at_pct": None if comp is None else dict(comp.atomic_percent),
        "ranged_fraction": ds.ranged_fraction,
        "known_unranged": None if comp is None else dict(comp.known_unranged),
        "format": ds.provenance.get("format"),
        "range_file": ds.provenance.get("range_file"),
        "warnings": ds.warnings,
    }


# ---------------------------------------------------------------------- explorer / voxelize
@dataclass
class ExploreResult:
    """Ranged composition volumes of a dataset.

    Attributes
    ----------
    dataset : APTDataset
    vox : VoxelCounts
        Species counts on ``grid`` (nm, axes zyx), delocalized when asked.
    elements : list of str
        Elements asked for (all of the ranges by default).
    spectrum : (edges, counts) or None
        Mass spectrum (0.05 Da bins) up to 1.1 x the highest range.
    """

    dataset: APTDataset
    vox: Any
    elements: list[str]
    spectrum: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def grid(self) -> Grid:
        return self.vox.grid

    @property
    def cloud(self):
        return self.dataset.cloud

    @property
    def ranges(self):
        return self.dataset.ranges

    def composition(self, element: str) -> np.ndarray:
        """at.% of ``element`` per voxel, ``(nz, ny, nx)`` float32."""
        return self.vox.composition(element)

    @property
    def provenance(self) -> dict[str, Any]:
        return {
            **self.dataset.provenance,
            "voxel_size_nm": list(self.vox.grid.spacing),
            "delocalization_nm_zyx": self.vox.delocalization_nm,
        }


def explore(
    path: APTDataset | str | os.PathLike,
    ranges: str | os.PathLike | None = None,
    params: ExploreParams | None = None,
    *,
    progress: Progress | None = None,
    spectrum: bool = True,
    **values: Any,
) -> ExploreResult:
    """Read, range and voxelize a dataset (the APT explorer and ``apt voxelize``).

    Parameters
    ----------
    path : path-like or APTDataset
    ranges : path-like, optional
        Range file (default: the one with the same stem beside ``path``).
    params : ExploreParams, optional
        Voxel edge (nm), delocalization (x, y, z nm; ``sigma = d / 3``, as AP
        Suite) and the elements of interest (checked against the ranges);
        ``values`` (``voxel_size=2.0``) are applied to it.
    spectrum : bool
        Also histogram the masses.
    """
    from .spectrum import mass_spectrum
    from .voxelize import voxelize

    p = ExploreParams.of(params, **values)
    progress = as_progress(progress)
    ds = _dataset(path, ranges, progress)
    rt = ds.require_ranges()
    els = list(p.elements) if p.elements else list(rt.elements)
    unknown = [e for e in els if e not in rt.elements]
    if unknown:
        raise ParameterError("elements", f"{unknown} are not in the ranges (have {rt.elements})")
    vox = voxelize(
        ds.cloud,
        rt,
        voxel_size=p.voxel_size,
        delocalization=p.delocalization_zyx,
        progress=progress,
    )
    spec = None
    if spectrum:
        top = max(r.hi for r in rt) * 1.1 if len(rt) else None
        spec = mass_spectrum(ds.cloud.mass, bin_width=0.05, mass_max=top)
    return ExploreResult(ds, vox, els, spec)


# ---------------------------------------------------------------------- interfaces
def prepare_interfaces(
    data: APTDataset | str | os.PathLike,
    ranges: str | os.PathLike | None = None,
    voxel: float = 1.0,
    progress: Progress | None = None,
    *,
    elements: list[str] | None = None,
    grid: tuple[Grid, tuple[int, int, int]] | None = None,
):
    """Atoms (for proxigrams) and composition voxels (for the methods) of a dataset.

    The volume comes from :func:`~napari_interfaces.apt.voxelize.voxelize`
    (the grid the APT explorer uses for the same voxel size) unless
    ``grid`` fixes it (e.g. the grid of saved labels).

    Returns
    -------
    dataset : APTDataset
    atoms : AtomSet
    volume : CompositionVolume
    """
    from .interfaces import atoms_from_cloud
    from .voxelize import voxelize

    progress = as_progress(progress)
    ds = _dataset(data, ranges, progress)
    rt = ds.require_ranges()
    atoms = atoms_from_cloud(ds.cloud, rt, elements, progress=progress)
    vox = voxelize(ds.cloud, rt, voxel_size=voxel, grid=grid, progress=progress)
    return ds, atoms, vox.composition_volume(atoms.elements)


@dataclass
class InterfacesRun:
    """Result of :func:`segment_dataset`.

    Attributes
    ----------
    dataset : APTDataset
    atoms : AtomSet
        Ranged atoms (molecular ions decomposed), nm.
    volume : CompositionVolume
        Atoms per element on ``grid``.
    result : InterfaceResult
        Labels (0 outside, phases 1..P), phase table, edge probability (HED), message.
    proxigram : Proxigram or None
        ``None`` when no interface was found or it was not asked for.
    seconds : dict
        ``read_voxelize`` and ``total`` wall time.
    """

    dataset: APTDataset
    atoms: Any
    volume: Any
    result: Any
    proxigram: Any = None
    seconds: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def grid(self) -> Grid:
        return self.result.grid

    @property
    def labels(self) -> np.ndarray:
        return self.result.labels

    @property
    def message(self) -> str:
        return self.result.message

    @property
    def provenance(self) -> dict[str, Any]:
        return {**self.dataset.provenance, **self.parameters}

    def summary(self) -> dict[str, Any]:
        """The JSON summary ``apt segment`` writes (grid, phases, interfaces, provenance)."""
        return {
            **result_summary(self.result, self.proxigram),
            "input": self.dataset.path,
            "range_file": self.dataset.provenance.get("range_file"),
            "n_ions": int(self.dataset.n_ions),
            "ranged_fraction": self.dataset.ranged_fraction,
            "warnings": self.dataset.warnings,
            "n_atoms": int(self.atoms.n),
            "elements": list(self.atoms.elements),
            "axes": self.parameters.get("axes"),
            "seconds": dict(self.seconds),
        }


def result_summary(result, prox=None) -> dict[str, Any]:
    """Grid (origin, voxel size, shape in voxels and nm), method, message, phases, interfaces."""
    g = result.grid
    shape = list(result.labels.shape)
    return {
        "grid": {
            "axes": g.axes,
            "origin_nm": [float(v) for v in g.origin],
            "voxel_size_nm": [float(v) for v in g.spacing],
            "shape_voxels": shape,
            "shape_nm": [float(n * s) for n, s in zip(shape, g.spacing)],
        },
        "method": result.method,
        "message": result.message,
        "interfaces_found": len(result.interfaces),
        "interfaces": [list(p) for p in result.interfaces],
        "phases": result.phases,
        "proxigram_reference_phase": None if prox is None else prox.phase,
    }


def segment_dataset(
    data: APTDataset | str | os.PathLike,
    ranges: str | os.PathLike | None = None,
    params: SegmentParams | None = None,
    *,
    progress: Progress | None = None,
    with_proxigram: bool = True,
    elements: list[str] | None = None,
    **values: Any,
) -> InterfacesRun:
    """Phases and interfaces of a dataset (``apt segment``, the Interfaces dock, the batch).

    Parameters
    ----------
    data : path-like or APTDataset
        Point cloud file (its range file is found beside it unless ``ranges``).
    ranges : path-like, optional
    params : SegmentParams, optional
        Method (``"auto"``, ``"hed"``, ``"iso"``, ``"gmm"``; see
        :func:`napari_interfaces.apt.interfaces.find_interfaces`), HED slicing
        axes, voxel edge (nm), HED weights and proxigram bin width (nm);
        ``values`` (``method="iso"``) are applied to it.
    progress : Progress, optional
    with_proxigram : bool
        Compute the proxigram when an interface is found.
    elements : list of str, optional
        Elements to use (default: all of the ranges).
    """
    from .interfaces import find_interfaces

    p = SegmentParams.of(params, **values)
    progress = as_progress(progress)
    t0 = time.perf_counter()
    ds, atoms, volume = prepare_interfaces(data, ranges, p.voxel, progress, elements=elements)
    t_read = time.perf_counter() - t0
    res = find_interfaces(volume, p.method, axes=p.axes, weights=p.weights, progress=progress)
    prox = None
    if with_proxigram and res.found:
        from .proxigram import proxigram

        progress.start(None, "proxigram")
        prox = proxigram(res.labels, res.grid, atoms, bin_nm=p.bin_nm)
    seconds = {
        "read_voxelize": round(t_read, 2),
        "total": round(time.perf_counter() - t0, 2),
    }
    return InterfacesRun(ds, atoms, volume, res, prox, seconds, p.to_dict())


@dataclass
class ProfilesResult:
    """Result of :func:`profiles`: the proxigram, the cylinder profile (or ``None``), the phase table."""

    profile: Any
    cylinder: Any
    phases: list[dict[str, Any]]


@dataclass(frozen=True)
class ProfilesParams(Spec):
    """Profiles of (edited) phase labels: the proxigram and a cylinder profile."""

    reference: int | None = param(
        None,
        "proxigram reference phase (distances are positive inside it)",
        lo=1,
        none="smallest",
        label="reference phase",
    )
    radius: float = param(
        2.0,
        "radius of the cylinder around the line whose atoms are profiled",
        unit="nm",
        lo=0,
        lo_open=True,
        hi=50.0,
        step=0.5,
        label="cylinder radius",
    )


def profiles(
    labels: np.ndarray,
    grid: Grid,
    atoms,
    volume,
    params: ProfilesParams | None = None,
    *,
    line: np.ndarray | None = None,
    progress: Progress | None = None,
    **values: Any,
) -> ProfilesResult:
    """Proxigram, phase table and (with a line) cylinder profile of labels.

    Parameters
    ----------
    labels : int array (nz, ny, nx)
        Phases (possibly corrected by hand) on ``grid``.
    grid : Grid
    atoms : AtomSet
    volume : CompositionVolume
        On the same grid (for the phase table).
    params : ProfilesParams, optional
        Reference phase of the proxigram (default: the smallest) and the
        cylinder radius (nm); ``values`` (``reference=2``) are applied to it.
    line : ndarray (2+, 3), optional
        Vertices (z, y, x nm) of a line; the cylinder runs between its ends.
    """
    from .phases import phase_table
    from .profile import cylinder_profile, line_from_shape
    from .proxigram import proxigram

    p = ProfilesParams.of(params, **values)
    progress = as_progress(progress)
    progress.start(None, "proxigram")
    profile = proxigram(labels, grid, atoms, phase=p.reference)
    progress.check()
    cylinder = None
    if line is not None:
        a, b = line_from_shape(line)
        cylinder = cylinder_profile(atoms, a, b, p.radius)
    return ProfilesResult(profile, cylinder, phase_table(labels, volume))


@dataclass
class SavedLabels:
    """Result of :func:`reload_labels`: saved phases with the data to recompute profiles."""

    labels: np.ndarray
    grid: Grid
    dataset: APTDataset
    atoms: Any
    volume: Any
    path: str
    metadata: dict[str, Any] = field(default_factory=dict)


def reload_labels(
    labels_path: str | os.PathLike,
    data: APTDataset | str | os.PathLike,
    ranges: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> SavedLabels:
    """Saved (corrected) phase labels and the dataset voxelized on their grid.

    The atoms and the composition volume are recomputed on the grid stored
    in the TIFF (voxel size and origin), so profiles of the reloaded labels
    match those computed before saving.
    """
    from ..core.errors import InputError
    from ..io.apt_volume import read_volume_tiff

    progress = as_progress(progress)
    progress.start(None, "reading saved labels")
    vol = read_volume_tiff(labels_path)
    labels = np.asarray(vol.data)
    if labels.ndim != 3 or labels.dtype.kind not in "iu":
        raise InputError(f"{labels_path}: not a 3D labels volume (shape {labels.shape})")
    g = vol.grid
    ds, atoms, volume = prepare_interfaces(
        data, ranges, float(g.spacing[0]), progress, grid=(g, tuple(labels.shape))
    )
    return SavedLabels(
        labels.astype(np.int32), g, ds, atoms, volume, str(labels_path), dict(vol.metadata or {})
    )


def result_folder_names(files: list[str | os.PathLike]) -> list[str]:
    """One distinct result-folder name per input: the stem, disambiguated when stems repeat.

    Inputs with the same stem get their parent folders' names prepended
    (``d1_small``, ``d2_small``), and an index when that is not enough.
    """
    paths = [Path(f) for f in files]
    stems = [p.stem for p in paths]
    names = list(stems)
    for i, p in enumerate(paths):
        if stems.count(p.stem) > 1:
            names[i] = f"{p.resolve().parent.name or 'root'}_{p.stem}"
    seen: dict[str, int] = {}
    for i, nm in enumerate(names):
        if names.count(nm) > 1:
            seen[nm] = seen.get(nm, 0) + 1
            names[i] = f"{nm}_{seen[nm]}"
    from ..core.outputs import safe_names

    # a stem such as ".." (input "...pos") must not name a folder outside the output folder
    return safe_names(names, default="dataset")
