"""The "Interfaces" dock: phases and composition profiles of an APT dataset.

A magicgui form (:class:`~._dock.Dock`) over the engine workflows of
:mod:`napari_interfaces.apt.workflows`; the dock only builds the form and
turns results into layers.

1. Pick the dataset (a point-cloud layer opened by our reader, or a file;
   the range file with the same stem is used unless one is given), the
   method (HED edge detection, iso-concentration, Gaussian mixture), the
   slicing axes and the voxel size, then **Find interfaces**
   (:func:`~napari_interfaces.apt.workflows.segment_dataset`, in the
   background, progress in napari's activity panel, **Cancel**). The edge
   probability (HED) is added as an Image and the phases as a Labels layer
   whose ``features`` name every phase (hover in the viewer) with a colour
   legend in the dock; both carry the voxel grid's scale, origin and units (nm).
2. Correct the Labels with napari's paint / fill / erase tools.
3. **Recompute profiles** reads the (corrected) Labels layer and redraws the
   proxigram (and, with a line in the chosen Shapes layer, the profile along
   that cylinder) in the background; **Export CSV** asks where to save it.
4. **Save labels** asks where to write the labels (voxel size and origin
   kept; ``<dataset>.phases.tif`` beside the dataset is suggested);
   **Reload saved** loads them again (re-voxelizing in the background). The
   labels live in the layer: closing the dock never discards edits, and a
   new run never overwrites labels the user painted on (a new layer is added).
"""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._dock import Dock
from .apt_explorer import PlotView, _colors, render_figure

if TYPE_CHECKING:
    import napari

__all__ = ["InterfacesWidget", "METHOD_NAMES", "phase_features", "saved_labels_path"]

#: Method shown in the form -> engine method.
METHOD_NAMES = {
    "auto (iso + mass-conserving precipitates)": "auto",
    "HED edges (deep learning)": "hed",
    "iso-concentration": "iso",
    "Gaussian mixture": "gmm",
}
_METHOD_TEXT = {v: k for k, v in METHOD_NAMES.items()}


def saved_labels_path(source: str | Path) -> Path:
    """Suggested file for corrected labels of a dataset: ``<stem>.phases.tif`` beside it."""
    p = Path(source)
    return p.with_name(p.stem + ".phases.tif")


def phase_name(phase: dict[str, Any]) -> str:
    """``"phase 2: Ni 45.1, Cr 44.2, Al 10.7"`` (elements by decreasing at.%)."""
    comp = sorted(phase.get("composition", {}).items(), key=lambda t: -t[1])
    return f"phase {phase['label']}: " + ", ".join(f"{e} {v:.1f}" for e, v in comp)


def phase_features(phases: list[dict[str, Any]], n_labels: int | None = None) -> dict[str, Any]:
    """A napari Labels ``features`` table: one row per label value (0 = outside).

    Columns: ``index`` (label), ``phase`` (name with composition) and one
    ``<El> at.%`` column per element.
    """
    by_label = {int(p["label"]): p for p in phases}
    top = max([0, *by_label, n_labels or 0])
    elements: list[str] = []
    for p in phases:
        for e in p.get("composition", {}):
            if e not in elements:
                elements.append(e)
    feats: dict[str, Any] = {
        "index": np.arange(top + 1),
        "phase": [
            "outside the specimen"
            if i == 0
            else (phase_name(by_label[i]) if i in by_label else f"label {i}")
            for i in range(top + 1)
        ],
    }
    for e in elements:
        feats[f"{e} at.%"] = np.array(
            [
                float(by_label[i]["composition"].get(e, np.nan)) if i in by_label else np.nan
                for i in range(top + 1)
            ]
        )
    return feats


def profiles_and_plot(labels, grid, atoms, volume, params, line, colors, size, progress=None):
    """The dock's profile job: :func:`~napari_interfaces.apt.workflows.profiles` (``params``:
    a :class:`~napari_interfaces.apt.workflows.ProfilesParams`) + its figure."""
    from ..apt.workflows import profiles

    out = profiles(labels, grid, atoms, volume, params, line=line, progress=progress)

    width, height = size
    n = 2 if out.cylinder is not None else 1
    height = max(height, PANEL_PX * n)  # each plot gets a readable height

    def draw(fig) -> None:
        fig.set_layout_engine("constrained")  # room for the legends below the axes
        ax = fig.add_subplot(n, 1, 1)
        out.profile.plot(ax, title="proxigram")
        _legend_below(ax)
        if out.cylinder is not None:
            ax2 = fig.add_subplot(n, 1, 2)
            out.cylinder.plot(ax2, title="cylinder profile")
            ax2.set_xlabel("distance along the line (nm)")
            _legend_below(ax2)

    img, fig = render_figure(draw, width, height, colors)
    return out, img, fig


#: Height of one profile plot in the dock (px): proxigram, cylinder profile.
PANEL_PX = 280


def _legend_below(ax) -> None:
    """Move an axes' legend below it (in columns) so it never covers the curves."""
    handles, labels = ax.get_legend_handles_labels()
    old = ax.get_legend()
    if old is not None:
        old.remove()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.22),
            ncol=min(len(labels), 4),
            fontsize="x-small",
            frameon=False,
        )


class InterfacesWidget(Dock):
    """Dock widget; see the module docstring. ``sync=True`` runs jobs inline (tests)."""

    title = "Interfaces"

    def __init__(self, napari_viewer: napari.Viewer | None = None, sync: bool = False) -> None:
        import napari

        super().__init__(napari_viewer, sync=sync)
        #: id(labels layer) -> (weakref to the layer, {"atoms", "volume", "path", "ranges"})
        self._engine: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.profile = None
        self.cylinder = None
        self.last_run = None

        self.dataset = self.add_layer_choice(
            "dataset",
            napari.layers.Points,
            filter=lambda layer: bool((layer.metadata or {}).get("apt_source")),
            tooltip="point-cloud layer opened from an APT file (its file is read again at full "
            "resolution; the shown points are decimated)",
        )
        from ..apt.workflows import SegmentParams
        from ._form import SpecForm

        # method, voxel and HED axes: declared once, in the engine's spec
        self.form = SpecForm(
            self,
            SegmentParams,
            skip=("bin_nm",),  # the proxigram is computed by Recompute profiles
            advanced_title="Advanced: HED axes, file, ranges",
            leave_open=True,  # the file choosers below join the same group
        )
        self.method = self.form["method"]
        self.voxel = self.form["voxel"]
        self.axes = self.form["axes"]
        self.file = self.add_file(
            "point_cloud_file",
            "point_cloud",
            label="or file",
            tooltip="an APT point cloud file; when set, it is used instead of the layer",
        )
        self.ranges = self.add_file(
            "range_file",
            "ranges",
            tooltip="range file (.rrng .rng .env); default: the one with the dataset's stem "
            "beside it",
        )
        self.end_advanced()
        self.run_btn = self.add_button(
            "Find interfaces", self.run, tooltip="voxelize, segment into phases (background)"
        )
        self.reload_btn = self.add_button(
            "Reload saved",
            self.reload_saved,
            tooltip="load labels saved earlier (<dataset>.phases.tif) and re-voxelize the "
            "dataset on their grid (background)",
        )
        self.add_section("Profiles")
        self.labels = self.add_layer_choice(
            "phases",
            napari.layers.Labels,
            filter=lambda layer: (
                "grid" in (layer.metadata or {}) and bool((layer.metadata or {}).get("apt_source"))
            ),
            tooltip="phases Labels layer (made by Find interfaces or Reload saved, possibly "
            "corrected by painting)",
        )
        from ..apt.workflows import ProfilesParams

        self.profile_form = SpecForm(self, ProfilesParams)
        self.ref_phase = self.profile_form["reference"]
        self.radius = self.profile_form["radius"]
        self.line = self.add_layer_choice(
            "line",
            napari.layers.Shapes,
            nullable=True,
            tooltip="Shapes layer whose last line gives the axis of the cylinder profile "
            "(optional)",
        )
        self.recompute_btn = self.add_button(
            "Recompute profiles",
            self.recompute_profiles,
            tooltip="proxigram (+ cylinder profile) of the current, possibly corrected, labels "
            "(background)",
        )
        self.export_btn = self.add_button(
            "Export CSV",
            self.export_csv,
            tooltip="save the proxigram as CSV (asks where)",
            job=False,
        )
        self.save_btn = self.add_button(
            "Save labels",
            self.save_labels,
            tooltip="save the phases as a TIFF with voxel size and origin (asks where)",
            job=False,
        )
        self.legend = self.add_label("")
        self.legend.tooltip = "phases of the chosen labels layer, with their colours"
        self.plot = PlotView(PANEL_PX)
        self.figure = None
        self.add_native(self.plot.widget)

    # ------------------------------------------------------------ inputs
    @staticmethod
    def _path(widget) -> str | None:
        v = widget.value
        text = "" if v is None else str(v)
        return None if text in ("", ".") else text

    def source_path(self) -> str:
        """The dataset file: the file field, else the chosen layer's source."""
        from ..core.errors import InputError

        path = self._path(self.file)
        if path:
            return path
        layer = self.dataset.value
        if layer is not None and (layer.metadata or {}).get("apt_source"):
            return str(layer.metadata["apt_source"])
        raise InputError("choose a dataset: open a point cloud file or set 'or file'")

    def _range_path(self) -> str | None:
        return self._path(self.ranges)

    def engine_data(self, layer) -> dict[str, Any]:
        """Atoms, volume and source of a phases layer made by this dock."""
        from ..core.errors import InputError

        entry = self._engine.get(id(layer))
        if entry is None or entry[0]() is not layer:
            raise InputError(
                f"{layer.name}: no dataset loaded for these labels; use Find interfaces or "
                "Reload saved"
            )
        return entry[1]

    # ------------------------------------------------------------ run
    def run(self, sync: bool | None = None):
        """Start the segmentation (background unless ``sync``); returns the Job."""
        from ..apt.workflows import segment_dataset

        path = self.source_path()
        params = self.form.spec()
        if sync is not None:
            self.sync = sync
        return self.run_job(
            segment_dataset,
            path,
            self._range_path(),
            params,
            with_proxigram=False,
            on_done=self._on_done,
            description=f"Interfaces ({_METHOD_TEXT[params.method]})",
        )

    def _on_done(self, run) -> None:
        from ._layers import add_or_update_layer

        self.last_run = run
        res, ds = run.result, run.dataset
        kw = res.grid.layer_kwargs()
        if res.edge_prob is not None:
            add_or_update_layer(
                self.viewer,
                res.edge_prob,
                "image",
                name=f"edge probability [{ds.stem}]",
                colormap="gray",
                blending="additive",
                metadata={"apt_source": ds.path, "grid": res.grid.to_dict()},
                **kw,
            )
        meta = {
            "grid": res.grid.to_dict(),
            "apt_source": ds.path,
            "range_file": ds.provenance.get("range_file"),
            "method": res.method,
            "phases": res.phases,
            "message": res.message,
        }
        layer = add_or_update_layer(
            self.viewer,
            res.labels,
            "labels",
            name=f"phases [{ds.stem}]",
            opacity=0.5,
            metadata=meta,
            **kw,
        )
        layer.features = phase_features(res.phases, int(res.labels.max()))
        self._remember(layer, run.atoms, run.volume, ds.path)
        self.labels.reset_choices()
        self.labels.value = layer
        method_text = _METHOD_TEXT.get(res.method, res.method)
        status = f"{method_text}: {res.message}"
        if ds.warnings:
            status += "; " + "; ".join(ds.warnings)
        self.set_status(status)
        self._show_legend(layer, res.phases)
        if res.found:
            self.recompute_profiles()

    def _remember(self, layer, atoms, volume, path) -> None:
        self._engine[id(layer)] = (
            weakref.ref(layer),
            {"atoms": atoms, "volume": volume, "path": path},
        )

    def _show_legend(self, layer, phases: list[dict]) -> None:
        rows = []
        for p in phases:
            try:
                rgba = np.asarray(layer.get_color(int(p["label"])), float)
                hexc = "#" + "".join(f"{int(round(c * 255)):02x}" for c in rgba[:3])
            except Exception:  # colour lookup is cosmetic
                hexc = "#888888"
            rows.append(f'<span style="color:{hexc}">&#9632;</span> {phase_name(p)}')
        self.legend.value = "<br>".join(rows)

    # ------------------------------------------------------------ profiles
    def labels_layer(self):
        from ..core.errors import InputError

        layer = self.labels.value
        if layer is None:
            raise InputError("find interfaces first (no phases layer)")
        return layer

    def recompute_profiles(self, sync: bool | None = None):
        """Proxigram (and cylinder profile) from the current, possibly corrected, labels.

        The layer data, the reference phase and the line are read here (GUI
        thread); the profiles are computed in a background job and drawn
        when it finishes. Returns the Job; ``sync=True`` runs it to
        completion first (tests).
        """
        from ..core.geometry import Grid

        layer = self.labels_layer()
        eng = self.engine_data(layer)
        labels = np.array(layer.data, dtype=np.int32)  # a copy: the user may keep painting
        grid = Grid.from_dict(layer.metadata["grid"])
        params = self.profile_form.spec()
        line = None
        shapes = self.line.value
        if shapes is not None and len(shapes.data):
            line = np.asarray(shapes.data[-1])
        if sync is not None:
            self.sync = sync
        return self.run_job(
            profiles_and_plot,
            labels,
            grid,
            eng["atoms"],
            eng["volume"],
            params,
            line,
            _colors(self.viewer),
            self.plot.size(),
            on_done=lambda out: self._on_profiles(layer, out),
            on_error=lambda exc: setattr(self, "profile", None),
            description="Profiles",
        )

    def _on_profiles(self, layer, job_out) -> None:
        out, img, self.figure = job_out
        self.plot.show(img)
        self.profile, self.cylinder = out.profile, out.cylinder
        if layer in self.viewer.layers:
            layer.metadata["phases"] = out.phases
            layer.features = phase_features(out.phases, int(np.max(layer.data, initial=0)))
            self._show_legend(layer, out.phases)
        # the status keeps the method's message; the phase table is in the legend
        msg = layer.metadata.get("message") or ""
        method = _METHOD_TEXT.get(layer.metadata.get("method"), layer.metadata.get("method"))
        self.set_status(
            (f"{method}: {msg}; " if msg else "")
            + f"proxigram about phase {self.profile.phase} updated"
        )

    def export_csv(self, path: str | None = None) -> Path | None:
        """Save the proxigram (and cylinder profile) as CSV; asks where unless ``path``."""
        from ..core.outputs import atomic_file

        if self.profile is None:
            self.set_status("recompute profiles first")
            return None
        if path is None:
            chosen = self.ask_save_path("Save proxigram", "proxigram.csv", "CSV (*.csv)")
            if chosen is None:
                return None
            path = str(chosen)
        with atomic_file(path) as tmp:
            self.profile.to_csv(tmp)
        if self.cylinder is not None:
            cyl = Path(path).with_name(Path(path).stem + "_cylinder.csv")
            with atomic_file(cyl) as tmp:
                self.cylinder.to_csv(tmp)
        self.set_status(f"saved {path}")
        return Path(path)

    # ------------------------------------------------------------ persistence
    def save_labels(self, path: str | None = None) -> Path | None:
        """Write the (corrected) labels as a TIFF with the voxel grid; asks where unless ``path``."""
        from ..core.geometry import Grid
        from ..core.outputs import atomic_file
        from ..io.apt_volume import write_volume_tiff

        layer = self.labels_layer()
        src = layer.metadata.get("apt_source")
        if path is None:
            suggested = saved_labels_path(src) if src else Path("phases.tif")
            chosen = self.ask_save_path("Save phases", suggested, "TIFF (*.tif *.tiff)")
            if chosen is None:
                self.set_status("labels not saved")
                return None
            path = str(chosen)
        out = Path(path)
        with atomic_file(out) as tmp:
            write_volume_tiff(
                tmp,
                np.asarray(layer.data).astype(np.uint16),
                Grid.from_dict(layer.metadata["grid"]),
                {
                    "apt_source": src,
                    "method": layer.metadata.get("method"),
                    "phases": layer.metadata.get("phases"),
                    "corrected": True,
                },
            )
        self.set_status(f"saved {out}")
        return out

    def reload_saved(self, path: str | None = None, sync: bool | None = None):
        """Load saved labels of the current dataset (``<stem>.phases.tif`` beside it,
        else the file the user picks).

        Re-voxelizing the dataset on the labels' grid runs in the background;
        returns the Job (``None`` when there is no saved file).
        """
        from ..apt.workflows import reload_labels

        src = self.source_path()
        p = Path(path) if path else saved_labels_path(src)
        if path is None and not p.is_file():
            chosen = self.ask_open_path("Saved phases", p.parent, "TIFF (*.tif *.tiff)")
            if chosen is None:
                self.set_status(f"no saved labels chosen (none at {p})")
                return None
            p = chosen
        if not p.is_file():
            self.set_status(f"no saved labels at {p}")
            return None
        if sync is not None:
            self.sync = sync
        return self.run_job(
            reload_labels,
            str(p),
            src,
            self._range_path(),
            on_done=self._on_reloaded,
            description="Reload saved labels",
        )

    def ask_open_path(self, caption: str, folder: str | Path = "", filter: str = ""):  # noqa: A002
        """Ask which file to open; ``None`` if cancelled (tests monkeypatch this)."""
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self.native, caption, str(folder), filter)
        return Path(path) if path else None

    def _on_reloaded(self, saved) -> None:
        from ._layers import add_or_update_layer

        ds = saved.dataset
        phases = saved.metadata.get("phases") or []
        meta = {
            "grid": saved.grid.to_dict(),
            "apt_source": ds.path,
            "range_file": ds.provenance.get("range_file"),
            "method": saved.metadata.get("method") or "saved",
            "phases": phases,
            "message": f"reloaded {Path(saved.path).name}",
        }
        layer = add_or_update_layer(
            self.viewer,
            saved.labels,
            "labels",
            name=f"phases [{ds.stem}]",
            opacity=0.5,
            metadata=meta,
            **saved.grid.layer_kwargs(),
        )
        if phases:
            layer.features = phase_features(phases, int(saved.labels.max()))
            self._show_legend(layer, phases)
        self._remember(layer, saved.atoms, saved.volume, ds.path)
        self.labels.reset_choices()
        self.labels.value = layer
        self.reloaded = layer
        self.set_status(f"reloaded {saved.path}")
