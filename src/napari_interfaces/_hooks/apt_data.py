"""npe2 hooks for APT data: reader, writers and sample data.

Opening a point cloud (``.pos .epos .apt .ato``, a ``.csv/.txt`` whose
header names x, y, z and m, or a labelled ``.npz``) looks for a range file
with the same stem (``.rrng``, ``.rng``, ``.env``). With one, it adds one
composition Image layer per element (at.%, 1 nm voxels, nm scale) and a
decimated Points layer coloured by species; without one, only the Points
layer (coloured by mass) and a message saying no range file was found.

Large ``.pos`` / ``.epos`` files opened in a viewer (more than
:data:`FAST_OPEN_IONS` ions) open in two steps, so the GUI never freezes: the
reader memory-maps the file and returns at once with a grey preview of
:data:`PREVIEW_POINTS` ions; a background job (progress in napari's activity
panel) then validates the file, ranges it, builds the composition volumes and
the coloured Points layer, which replace the preview.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..aptmodel.pointcloud import PointCloud
from ..aptmodel.ranging import RangeTable

__all__ = [
    "get_reader",
    "cloud_layers",
    "write_points",
    "write_labels_tiff",
    "write_image_tiff",
    "sample_layered",
    "sample_isolated",
    "sample_interconnected",
    "MAX_POINTS",
    "FAST_OPEN_IONS",
    "PREVIEW_POINTS",
    "read_apt_layers_fast",
]

#: Points shown at most (random, spread over the whole acquisition).
MAX_POINTS = 200_000
#: ``.pos``/``.epos`` files with more ions open in two steps (preview now, the rest in a job).
FAST_OPEN_IONS = 300_000
#: Ions in the quick grey preview of a large file.
PREVIEW_POINTS = 50_000
_BINARY = (".pos", ".epos", ".apt", ".ato")
_RECORD_BYTES = {".pos": 16, ".epos": 44}
_RANGES = (".rrng", ".rng", ".env")
_UNRANGED_RGBA = (0.6, 0.6, 0.6, 0.5)


def _looks_like_text_cloud(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            first = fh.readline().lower()
    except OSError:
        return False
    tokens = {t.strip().strip('"') for t in first.replace(";", ",").replace("\t", ",").split(",")}
    tokens |= set(first.split())
    return {"x", "y", "z"} <= tokens and bool(tokens & {"m", "mass", "da", "m/n", "mz"})


def _looks_like_labelled_npz(path: Path) -> bool:
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
    return {"xyz.npy", "mass.npy", "label.npy"} <= names


def get_reader(path: str | list[str]):
    """Return :func:`read_apt_layers` for APT point clouds, else ``None``."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in _RECORD_BYTES and _fast_open(p):
        return read_apt_layers_fast
    if suffix in _BINARY:
        return read_apt_layers
    if suffix in (".csv", ".txt") and _looks_like_text_cloud(p):
        return read_apt_layers
    if suffix == ".npz" and _looks_like_labelled_npz(p):
        return read_apt_layers
    if suffix in _RANGES and cloud_for_range_file(p) is not None:
        return read_range_file_layers
    return None


def cloud_for_range_file(path: str | Path) -> Path | None:
    """The point cloud with the same stem beside a range file (``.pos``, ``.epos``, ...)."""
    p = Path(path)
    for suffix in _BINARY:
        for cand in (p.with_suffix(suffix), p.with_suffix(suffix.upper())):
            if cand.is_file():
                return cand
    return None


def read_range_file_layers(path: str | list[str]) -> list[tuple]:
    """A dropped range file: the point cloud with its stem, ranged by this file."""
    if isinstance(path, list):
        path = path[0]
    cloud = cloud_for_range_file(path)
    if cloud is None:  # pragma: no cover - get_reader checked it
        return []
    return read_apt_layers(str(cloud), ranges=str(path))


def _hex_to_rgba(color: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    c = color.lstrip("#")
    return (int(c[0:2], 16) / 255, int(c[2:4], 16) / 255, int(c[4:6], 16) / 255, alpha)


def points_layer(
    cloud: PointCloud,
    ranges: RangeTable | None,
    name: str,
    max_points: int = MAX_POINTS,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any], str]:
    """A decimated Points LayerData tuple (zyx, nm) coloured by species."""
    idx, total = cloud.decimate(max_points, seed)
    xyz = np.asarray(cloud.xyz[idx], dtype=np.float32)
    mass = np.asarray(cloud.mass[idx], dtype=np.float32)
    features: dict[str, Any] = {"mass": mass, "ion_index": idx}
    if ranges is not None:
        sp = ranges.species_of(mass)
        palette = np.array(
            [_hex_to_rgba(ranges.color_of(s), 0.8) for s in ranges.species] + [_UNRANGED_RGBA]
        )
        colors = palette[np.where(sp < 0, len(ranges.species), sp)]
        names = np.array([*ranges.species, "unranged"])
        features["species"] = names[np.where(sp < 0, len(ranges.species), sp)]
    else:
        import matplotlib

        lo, hi = np.percentile(mass, [1, 99]) if len(mass) else (0, 1)
        colors = matplotlib.colormaps["viridis"](np.clip((mass - lo) / max(hi - lo, 1e-9), 0, 1))
    if "label" in cloud.columns:
        features["label"] = np.asarray(cloud.columns["label"])[idx]
    shown = len(idx)
    label = f"ions ({shown:,} of {total:,} shown) [{name}]"
    meta = {
        "name": label,
        "size": 0.4,
        "face_color": colors,
        "border_width": 0,
        "features": features,
        "units": ("nm", "nm", "nm"),
        "axis_labels": ("z", "y", "x"),
        "metadata": {
            "apt_source": cloud.source,
            "n_shown": shown,
            "n_total": total,
            "range_file": None if ranges is None else ranges.source,
        },
    }
    return xyz[:, ::-1].copy(), meta, "points"


def cloud_layers(
    cloud: PointCloud,
    ranges: RangeTable | None,
    name: str,
    voxel_size: float = 1.0,
    delocalization=None,
    max_points: int = MAX_POINTS,
) -> list[tuple]:
    """Composition Image layers (one per element, at.%) and the Points layer."""
    from ..apt.voxelize import voxelize

    layers: list[tuple] = []
    if ranges is not None:
        vox = voxelize(cloud, ranges, voxel_size=voxel_size, delocalization=delocalization)
        for el in ranges.elements:
            layers.append(
                (
                    vox.composition(el),
                    {
                        "name": f"{el} at.% [{name}]",
                        "colormap": "magma",
                        "blending": "additive",
                        "contrast_limits": (0.0, 100.0),
                        "visible": el == ranges.elements[0],
                        "metadata": {
                            "quantity": f"{el} at.%",
                            "element": el,
                            "grid": vox.grid.to_dict(),
                            "range_file": ranges.source,
                        },
                        **vox.grid.layer_kwargs(),
                    },
                    "image",
                )
            )
    layers.append(points_layer(cloud, ranges, name, max_points))
    return layers


def read_apt_layers(path: str | list[str], ranges: str | None = None) -> list[tuple]:
    """Read a point cloud and its range file (``ranges``, else the one with its stem)."""
    from ..apt.dataset import open_dataset

    if isinstance(path, list):
        path = path[0]
    ds = open_dataset(path, ranges, warn=False)
    _notify_dataset(ds, ds.name)
    return cloud_layers(ds.cloud, ds.ranges, ds.name)


def _notify_dataset(ds: Any, name: str) -> None:
    """Say which range file a dataset uses (or that it has none) and its warnings."""
    rf = ds.provenance.get("range_file")
    _notify(
        f"{name}: using ranges from {Path(rf).name} ({ds.ranged_fraction:.1%} of ions ranged)"
        if rf is not None
        else f"{name}: no range file with the same stem found (.rrng/.rng/.env); "
        "showing ions coloured by mass. Open the APT explorer to choose one."
    )
    for w in ds.warnings:
        _notify(w)


def _current_viewer() -> Any:
    try:
        import napari

        viewer = napari.current_viewer()
    except Exception:  # no Qt / no viewer: the plain reader
        return None
    return getattr(viewer, "__wrapped__", viewer)


def _fast_open(path: Path) -> bool:
    """A large ``.pos``/``.epos`` opened in a shown viewer: open in two steps."""
    try:
        n = path.stat().st_size // _RECORD_BYTES[path.suffix.lower()]
    except OSError:
        return False
    return n > FAST_OPEN_IONS and _current_viewer() is not None


def _units_ready() -> bool:
    """Whether napari's pint unit registry is built (its first use takes 1-3 s)."""
    try:
        from napari.utils._units import get_unit_registry

        return type(get_unit_registry().get()).__name__ != "LazyRegistry"
    except Exception:  # an older/newer napari: assume built
        return True


def read_apt_layers_fast(path: str | list[str]) -> list[tuple]:
    """Open a large ``.pos``/``.epos`` without freezing the GUI (see the module docs).

    Returns a grey Points preview of :data:`PREVIEW_POINTS` memory-mapped ions
    at once (a bad record size still raises here); a background job then adds
    the composition layers and the coloured Points layer in its place.
    """
    import uuid

    from ..io.apt_pointcloud import read_epos, read_pos

    if isinstance(path, list):
        path = path[0]
    p = Path(path)
    viewer = _current_viewer()
    if viewer is None:
        return read_apt_layers(str(p))
    reader = read_pos if p.suffix.lower() == ".pos" else read_epos
    cloud = reader(p, validate=False)  # memory-mapped; validated in the job
    idx, total = cloud.decimate(PREVIEW_POINTS, 0)
    zyx = np.asarray(cloud.xyz[idx], dtype=np.float32)[:, ::-1].copy()
    token = uuid.uuid4().hex
    units_now = _units_ready()
    meta: dict[str, Any] = {
        "name": f"ions (preview {len(idx):,} of {total:,}; loading…) [{p.name}]",
        "size": 0.4,
        "face_color": "#9a9a9a",
        "border_width": 0,
        "axis_labels": ("z", "y", "x"),
        "metadata": {"apt_source": str(p), "apt_loading": token, "n_total": total},
    }
    if units_now:
        meta["units"] = ("nm", "nm", "nm")
    from qtpy.QtCore import QTimer

    # after napari has added and drawn the preview
    QTimer.singleShot(100, lambda: _finish_open(viewer, str(p), token))
    return [(zyx, meta, "points")]


def _full_open_steps(path: str):
    """Background part of :func:`read_apt_layers_fast`: validate, range, voxelize, colour.

    A generator for napari's ``create_worker`` (one progress step per yield);
    returns ``{"dataset", "layers"}`` (napari layers, made off the GUI thread).
    """
    from napari.layers import Layer

    from ..apt.dataset import open_dataset
    from ..io.apt_pointcloud import read_epos, read_pos

    p = Path(path)
    try:  # build napari's unit registry here, not on the GUI thread
        from napari.utils._units import get_unit_registry

        _ = get_unit_registry().nm
    except Exception:  # an optimisation only
        pass
    yield "checking the file"
    (read_pos if p.suffix.lower() == ".pos" else read_epos)(p, validate=True)
    yield "ranging"
    ds = open_dataset(path, None, warn=False)
    yield "composition volumes"
    tuples = cloud_layers(ds.cloud, ds.ranges, ds.name)
    yield "preparing layers"
    layers = [Layer.create(data, meta, kind) for data, meta, kind in tuples]
    return {"dataset": ds, "layers": layers}


def _preview_layer(viewer: Any, token: str) -> Any:
    for layer in viewer.layers:
        if (layer.metadata or {}).get("apt_loading") == token:
            return layer
    return None


def _finish_open(viewer: Any, path: str, token: str) -> None:
    """Start the background job that replaces the preview with the full layers."""
    from napari.qt.threading import create_worker
    from qtpy.QtCore import QTimer

    name = Path(path).name

    def _done(result: dict) -> None:
        # one layer per event-loop turn: each costs napari 0.2-0.3 s on the GUI thread
        # (controls, vispy node, first draw); together they would freeze it for > 1 s
        pending = list(result["layers"])

        def _next() -> None:
            if pending:
                layer = pending.pop(0)
                preview = _preview_layer(viewer, token)
                at = viewer.layers.index(preview) if preview is not None else len(viewer.layers)
                viewer.layers.insert(at, layer)
                QTimer.singleShot(1, _next)
                return
            preview = _preview_layer(viewer, token)
            if preview is not None:
                viewer.layers.remove(preview)
            _announce(result["dataset"])
            _OPEN_STATE[token] = "done"

        _next()

    def _announce(ds: Any) -> None:
        _notify_dataset(ds, name)
        try:  # physical units now: show the scale bar (napari >= 0.9: canvas.overlays)
            canvas = getattr(viewer, "canvas", None)
            bar = getattr(getattr(canvas, "overlays", None), "scale_bar", None)
            (bar if bar is not None else viewer.scale_bar).visible = True
        except Exception:  # a convenience only
            pass

    def _error(exc: BaseException) -> None:
        from napari.utils.notifications import show_error

        _OPEN_STATE[token] = f"error: {exc}"
        preview = _preview_layer(viewer, token)
        if preview is not None:
            preview.name = f"ions (preview; not loaded: see the error) [{name}]"
        show_error(f"opening {name}: {exc}")

    _OPEN_STATE[token] = "running"
    worker = create_worker(
        _full_open_steps,
        path,
        _progress={"total": 4, "desc": f"opening {name}"},
        _start_thread=False,
        _ignore_errors=True,
    )
    worker.returned.connect(_done)
    worker.errored.connect(_error)
    _OPEN_WORKERS[token] = worker
    worker.finished.connect(lambda: _OPEN_WORKERS.pop(token, None))
    worker.start()


#: State of each two-step open by preview token: "running", "done" or "error: ...".
_OPEN_STATE: dict[str, str] = {}
#: Running background workers (kept alive until they finish).
_OPEN_WORKERS: dict[str, Any] = {}


def _notify(message: str) -> None:
    try:
        from napari.utils.notifications import show_info

        show_info(message)
    except Exception:  # notifications are best effort
        pass


# ---------------------------------------------------------------------- writers
def write_points(path: str, data: np.ndarray, attributes: dict) -> list[str]:
    """Write a Points layer (zyx nm) as ``.pos``/``.epos`` or labelled ``.npz``.

    Masses come from the ``mass`` feature (0 when absent); ``.npz`` keeps the
    ``label`` feature (or species) as per-ion labels.
    """
    from ..core.outputs import atomic_file
    from ..io.apt_labels import write_labelled_pointcloud
    from ..io.apt_pointcloud import write_pointcloud

    data = np.asarray(data, dtype=np.float64)
    scale = np.asarray(attributes.get("scale", (1, 1, 1))[-3:], dtype=np.float64)
    translate = np.asarray(attributes.get("translate", (0, 0, 0))[-3:], dtype=np.float64)
    zyx = data[:, -3:] * scale + translate
    feats = attributes.get("features")
    mass = np.zeros(len(zyx), np.float32)
    if feats is not None and "mass" in feats:
        mass = np.asarray(feats["mass"], dtype=np.float32)
    cloud = PointCloud(zyx[:, ::-1].astype(np.float32), mass)
    p = Path(path)
    if p.suffix.lower() == ".npz":
        names: list[str] = []
        if feats is not None and "label" in feats:
            labels = np.asarray(feats["label"], dtype=np.int32)
        elif feats is not None and "species" in feats:
            sp = np.asarray(feats["species"]).astype(str)
            names = sorted(set(sp.tolist()))
            labels = np.searchsorted(np.array(names), sp).astype(np.int32)
        else:
            labels = np.zeros(len(zyx), np.int32)
        with atomic_file(p) as tmp:
            write_labelled_pointcloud(
                tmp, cloud, labels, names or None, {"layer": attributes.get("name")}
            )
    else:
        with atomic_file(p) as tmp:
            write_pointcloud(tmp, cloud)
    return [str(p)]


def _grid_from_attributes(attributes: dict):
    from ..core.geometry import Grid

    scale = tuple(float(s) for s in attributes.get("scale", (1.0, 1.0, 1.0))[-3:])
    translate = tuple(float(t) for t in attributes.get("translate", (0.0, 0.0, 0.0))[-3:])
    units = attributes.get("units") or ("nm",)
    unit = str(units[-1]) if units else "nm"
    unit = {"nanometer": "nm", "angstrom": "Å"}.get(unit, unit)
    return Grid(translate, scale, unit, "zyx")


def write_labels_tiff(path: str, data: np.ndarray, attributes: dict) -> list[str]:
    """Write a 3D Labels layer as TIFF with its voxel size and origin (nm), atomically."""
    from ..core.outputs import atomic_file
    from ..io.apt_volume import write_volume_tiff

    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"expected a 3D labels volume (z, y, x), got shape {data.shape}")
    if data.max(initial=0) < 256 and data.min(initial=0) >= 0:
        data = data.astype(np.uint8)
    elif data.min(initial=0) >= 0 and data.max(initial=0) < 65536:
        data = data.astype(np.uint16)
    with atomic_file(path) as tmp:
        write_volume_tiff(
            tmp, data, _grid_from_attributes(attributes), {"layer": attributes.get("name")}
        )
    return [path]


def write_image_tiff(path: str, data: np.ndarray, attributes: dict) -> list[str]:
    """Write a 3D Image layer (e.g. composition) as float32 TIFF with voxel size, atomically."""
    from ..core.outputs import atomic_file
    from ..io.apt_volume import write_volume_tiff

    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(f"expected a 3D volume (z, y, x), got shape {data.shape}")
    meta = {"layer": attributes.get("name"), **(attributes.get("metadata") or {})}
    with atomic_file(path) as tmp:
        write_volume_tiff(tmp, data.astype(np.float32), _grid_from_attributes(attributes), meta)
    return [path]


# ---------------------------------------------------------------------- sample data
def _sample(geometry: str, seed: int = 0) -> list[tuple]:
    from ..apt.synthetic import synthesize

    size = (16.0, 16.0, 24.0) if geometry == "layered" else (16.0, 16.0, 16.0)
    s = synthesize(geometry, size_nm=size, seed=seed)
    name = f"synthetic {geometry} (seed {seed})"
    layers = cloud_layers(s.cloud, s.ranges, name)
    phase, grid = s.phase_volume()
    layers.insert(
        0,
        (
            phase,
            {
                "name": f"true phase [{name}]",
                "opacity": 0.3,
                "visible": False,
                "metadata": {"labels": {"0": "gamma", "1": "gamma_prime"}},
                **grid.layer_kwargs(),
            },
            "labels",
        ),
    )
    return layers


def sample_layered() -> list[tuple]:
    """Synthetic Ni-Al-Cr with γ′ plates (seed 0), generated now."""
    return _sample("layered")


def sample_isolated() -> list[tuple]:
    """Synthetic Ni-Al-Cr with isolated γ′ precipitates (seed 0), generated now."""
    return _sample("isolated")


def sample_interconnected() -> list[tuple]:
    """Synthetic Ni-Al-Cr with interconnected γ/γ′ networks (seed 0), generated now."""
    return _sample("interconnected")
