"""The "APT explorer" dock: range a point cloud, voxelize it, look at slabs.

A magicgui form (:class:`~._dock.Dock`): the point cloud and its range file
(picked up automatically when one has the same stem, or from the newest
layer our reader made), the voxel size and an optional delocalization (x,
y, z in nm; the form is generated from
:class:`~napari_interfaces.apt.workflows.ExploreParams`), the elements and
the slicing axis with a slab thickness.
**Compute** runs the engine workflow
:func:`napari_interfaces.apt.workflows.explore` in the background (progress
in napari's activity panel, **Cancel** stops it within one chunk of ions)
and adds or updates one composition Image layer per element (at.%, scale,
origin and units in nm from the voxel grid). Slab changes average the
composition over the slab **off the GUI thread** (debounced, newest wins)
and make the chosen axis the slider axis. The mass spectrum with the ranges
shaded is drawn in the dock in napari's theme colours.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._dock import Dock, theme_colors

if TYPE_CHECKING:
    import napari

__all__ = ["AptExplorer", "PlotView", "explore_and_plot", "render_figure"]


def render_figure(draw, width_px: int, height_px: int, colors: dict | None = None, dpi: int = 90):
    """Draw a matplotlib figure off-screen (Agg; safe on a worker thread).

    ``draw(figure)`` adds the axes; ``colors`` (napari's theme colours, read
    on the GUI thread) style them. Returns ``(rgba array, figure)``: the GUI
    thread only shows the pixels (:class:`PlotView`), so a slow first draw
    (text layout) never stalls the viewer.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width_px, 100) / dpi, max(height_px, 80) / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    draw(fig)
    bg, fg = (colors or {}).get("foreground"), (colors or {}).get("text")
    if bg:
        fig.set_facecolor(bg)
    for ax in fig.axes:
        if bg:
            ax.set_facecolor(bg)
        if fg:
            for spine in ax.spines.values():
                spine.set_color(fg)
            ax.tick_params(colors=fg, labelsize="small")
            ax.xaxis.label.set_color(fg)
            ax.yaxis.label.set_color(fg)
            ax.title.set_color(fg)
            legend = ax.get_legend()
            if legend is not None:
                legend.get_frame().set_facecolor(bg or "none")
                for text in legend.get_texts():
                    text.set_color(fg)
    if fig.get_layout_engine() is None:  # ``draw`` may have chosen one (constrained)
        fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy(), fig


class PlotView:
    """A QLabel showing a figure rendered by :func:`render_figure`."""

    def __init__(self, min_height: int = 180) -> None:
        from qtpy.QtWidgets import QLabel

        self.widget = QLabel()
        self.widget.setMinimumHeight(min_height)
        self.image: np.ndarray | None = None

    def size(self) -> tuple[int, int]:
        # leave room for the form's vertical scroll bar: no sideways scrolling
        w = self.widget.width() - 18 if self.widget.width() > 168 else 380
        return w, max(self.widget.minimumHeight(), 180)

    def show(self, rgba: np.ndarray) -> None:
        from qtpy.QtGui import QImage, QPixmap

        self.image = np.ascontiguousarray(rgba)
        h, w = self.image.shape[:2]
        qimg = QImage(self.image.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
        self.widget.setPixmap(QPixmap.fromImage(qimg))


def explore_and_plot(path, ranges, params, colors, size, progress=None):
    """The explorer's job: :func:`~napari_interfaces.apt.workflows.explore` (``params``: an
    :class:`~napari_interfaces.apt.workflows.ExploreParams`) + the spectrum figure."""
    from ..apt.spectrum import plot_spectrum
    from ..apt.workflows import explore

    res = explore(path, ranges, params, progress=progress)

    def draw(fig) -> None:
        ax = fig.add_subplot(111)
        edges, counts = res.spectrum
        plot_spectrum(ax, edges, counts, res.ranges)
        ax.set_title(f"{res.dataset.name}: {res.dataset.n_ions:,} ions", fontsize="small")

    img, fig = render_figure(draw, *size, colors)
    return res, img, fig


def _colors(viewer) -> dict:
    try:
        return theme_colors(viewer)
    except Exception:  # no napari settings (plain Qt): matplotlib's defaults
        return {}


class AptExplorer(Dock):
    """Dock widget; see the module docs. ``sync=True`` runs jobs inline (tests)."""

    title = "APT explorer"

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None, sync: bool = False):
        super().__init__(napari_viewer, sync=sync)
        self.result = None
        #: element layer name -> composition volume as computed (before slab averaging)
        self._raw: dict[str, np.ndarray] = {}
        self.layers: dict[str, Any] = {}
        self._ranges = None

        self.file = self.add_file(
            "point_cloud",
            "point_cloud",
            tooltip="APT point cloud (.pos .epos .apt .ato .csv/.txt with x y z m, labelled .npz); "
            "a range file with the same stem is picked up automatically",
            on_change=self._file_changed,
        )
        self.range_file = self.add_file(
            "range_file",
            "ranges",
            tooltip="range file (.rrng .rng .env): mass windows (Da) -> ion species -> elements",
            on_change=self._load_ranges,
        )
        from ..apt.workflows import ExploreParams
        from ._form import SpecForm

        # voxel size and (advanced) delocalization: declared once, in the engine's spec
        self.form = SpecForm(
            self, ExploreParams, skip=("elements",), advanced_title="Advanced: delocalization"
        )
        self.voxel = self.form["voxel_size"]
        self.deloc = self.form["delocalization_xyz"]
        from magicgui.widgets import Select

        self.elements = Select(choices=[], value=[], name="elements", label="elements")
        self.elements.tooltip = "elements to show as composition layers (at.%, molecular ions "
        "decomposed into atoms)"
        self.elements.native.setMaximumHeight(90)
        self.params["elements"] = self.elements
        self.append(self.elements)
        self.compute_button = self.add_button(
            "Compute",
            self.compute,
            tooltip="read, range and voxelize in the background (Cancel stops it)",
        )
        self.add_section("Slab view")
        self.axis = self.add_param(
            "slice_axis",
            "z",
            choices=["z", "y", "x"],
            tooltip="axis the slider moves along; the other two are shown",
            on_change=self._apply_slicing,
        )
        self.thickness = self.add_param(
            "thickness",
            1.0,
            label="thickness (nm)",
            min=0.0,
            max=1000.0,
            step=0.5,
            tooltip="slab thickness in nm: each view is the mean composition over the slab "
            "(computed in the background)",
            on_change=self._apply_slicing,
        )
        self.add_section("Mass spectrum")
        self.plot = PlotView(240)
        self.figure = self.ax = None
        self.add_native(self.plot.widget)
        self.set_status("Choose a point cloud and a range file.")
        if self.viewer is not None:
            self._pick_up_layer()

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _path(widget) -> str:
        value = widget.value
        text = str(value) if value is not None else ""
        return "" if text in ("", ".") else text

    def _pick_up_layer(self) -> None:
        """Prefill from the newest layer our reader made (metadata ``apt_source``)."""
        for layer in reversed(list(self.viewer.layers)):
            md = getattr(layer, "metadata", None) or {}
            src = md.get("apt_source")
            if src:
                self.set_file(src)
                if md.get("range_file"):
                    self.set_ranges(md["range_file"])
                return

    def set_file(self, path: str | Path) -> None:
        self.file.value = Path(path)

    def set_ranges(self, path: str | Path) -> None:
        if self._path(self.range_file) == str(path):
            self._load_ranges()
        else:
            self.range_file.value = Path(path)

    def _file_changed(self, *_: Any) -> None:
        from ..io.ranges import find_range_file

        path = self._path(self.file)
        if not path:
            return
        found = find_range_file(path)
        if found is not None:
            self.set_ranges(found)
        elif not self._path(self.range_file):
            self.set_status(f"No range file with the stem of {Path(path).name} found; choose one.")

    def _load_ranges(self, *_: Any) -> None:
        """Read the (small) range file and list its elements."""
        from ..io.ranges import read_ranges

        path = self._path(self.range_file)
        if not path:
            return
        try:
            self._ranges = read_ranges(path)
        except (ValueError, OSError) as exc:
            self._ranges = None
            self._show_error(exc, "range file")
            return
        self.elements.choices = list(self._ranges.elements)
        self.elements.value = list(self._ranges.elements)
        self.set_status(f"{len(self._ranges)} ranges, species {', '.join(self._ranges.species)}")

    def selected_elements(self) -> list[str]:
        return list(self.elements.value)

    def set_elements(self, elements: list[str]) -> None:
        self.elements.value = [e for e in elements if e in self.elements.choices]

    def parameters(self):
        """The validated :class:`~napari_interfaces.apt.workflows.ExploreParams` of the form
        (a bad value is marked on its field and raised)."""
        return self.form.spec()

    # ------------------------------------------------------------------ compute
    def compute(self, sync: bool | None = None):
        """Start (or with ``sync``) read + range + voxelize; returns the Job."""
        path, rpath = self._path(self.file), self._path(self.range_file)
        if not path or not rpath:
            self.set_status("Choose a point cloud and a range file first.")
            return None
        params = self.parameters()
        if sync is not None:
            self.sync = sync
        return self.run_job(
            explore_and_plot,
            path,
            rpath,
            params,
            _colors(self.viewer),
            self.plot.size(),
            on_done=self._on_done,
            description="APT explorer",
        )

    def _on_done(self, out) -> None:
        result, img, self.figure = out
        self.ax = self.figure.axes[0] if self.figure.axes else None
        self.plot.show(img)
        self.result = result
        vox, ds = result.vox, result.dataset
        self._ranges = ds.ranges
        elements = [e for e in self.selected_elements() if e in vox.elements] or vox.elements
        name = ds.name
        if self.viewer is not None:
            kwargs = vox.grid.layer_kwargs()
            self._raw = {}
            for el in elements:
                key = f"{el} at.% [{name}]"
                data = vox.composition(el)
                self._raw[key] = data
                meta = {
                    "element": el,
                    "quantity": f"{el} at.%",
                    "grid": vox.grid.to_dict(),
                    "apt_source": ds.path,
                    "range_file": ds.provenance.get("range_file"),
                }
                layer = self.viewer.layers[key] if key in self.viewer.layers else None
                if layer is not None and (layer.metadata or {}).get("element") == el:
                    # ours (made by this dock or the reader): update in place
                    layer.data = data
                    layer.scale = kwargs["scale"]
                    layer.translate = kwargs["translate"]
                    layer.units = kwargs["units"]
                    layer.metadata.update(meta)
                else:
                    from ._layers import unique_name

                    layer = self.viewer.add_image(
                        data,
                        name=unique_name(self.viewer, key),
                        colormap="magma",
                        contrast_limits=(0.0, 100.0),
                        blending="additive",
                        metadata=meta,
                        **kwargs,
                    )
                self.layers[key] = layer
            self._apply_slicing()
        d = vox.delocalization_nm
        text = (
            f"{ds.n_ions:,} ions ({ds.ranged_fraction:.1%} ranged); grid {vox.shape} (z, y, x) "
            f"of {vox.grid.spacing[0]:g} nm" + (f"; delocalization z, y, x = {d} nm" if d else "")
        )
        if ds.warnings:
            from napari.utils.notifications import show_warning

            for w in ds.warnings:
                show_warning(w)
            text += "; " + "; ".join(ds.warnings)
        self.set_status(text)

    # ------------------------------------------------------------------ slab view
    def _apply_slicing(self, *_: Any) -> None:
        """Make the chosen axis the slider axis; average over the slab off the GUI thread."""
        if self.viewer is None or not self._raw:
            return
        axis = "zyx".index(self.axis.value)
        ndim = self.viewer.dims.ndim
        if ndim < 3:
            return
        lead = ndim - 3
        order = list(range(lead)) + [lead + axis] + [lead + a for a in range(3) if a != axis]
        self.viewer.dims.order = tuple(order)
        spacing = float(self.result.grid.spacing[axis]) if self.result is not None else 1.0
        width = max(1, int(round(float(self.thickness.value) / spacing)))
        from ..apt.slicing import slab_means

        raw = dict(self._raw)
        self.run_latest(
            "slab view",
            slab_means,
            raw,
            axis,
            width,
            on_done=lambda out: self._show_slabs(out, width),
        )

    def _show_slabs(self, volumes: dict[str, np.ndarray], width: int) -> None:
        for key, data in volumes.items():
            layer = self.layers.get(key)
            if layer is not None and layer in self.viewer.layers:
                layer.data = data
                layer.metadata["slab_voxels"] = width
        self.slab_width = width
