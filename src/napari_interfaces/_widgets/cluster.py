"""The "Chip communities" dock: unsupervised segmentation by chip similarity graphs.

A magicgui form on the plugin's :class:`._dock.Dock` base. Choose an Image
layer (more layers as extra co-registered channels), keep the chip size on
*auto* or set it, press *Run*: the engine workflow
(:func:`napari_interfaces.cluster.series.segment_series`, i.e.
:func:`~napari_interfaces.cluster.pipeline.segment_by_communities` plus, with
*apply to all open images*, the same labels on every other open image) runs
in the background; each result is a Labels layer named after its source
(``communities [image]``) with the source's scale and units, a community
table and a gallery of example chips. Edit the Labels (merge, split,
repaint) and press *Learn from corrections*: a classifier on the chip
features relabels everything; *Save model* writes it (JSON + npz) for
``napari-interfaces cluster-apply``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._dock import Dock
from ._form import SpecForm
from ._layers import add_or_update_layer, layer_kwargs, pixel_size_from_layer, result_name

if TYPE_CHECKING:
    import napari

__all__ = ["ChipCommunitiesWidget", "LABELS_PREFIX"]

#: Result layers are named ``"communities [<source layer>]"``.
LABELS_PREFIX = "communities"

#: Tooltips of the dock's own widgets (the parameters' come from ClusterParams).
TIPS = {
    "image": "The micrograph to segment (a 2-D Image layer).",
    "channels": "Further Image layers of the same specimen and size used as extra channels "
    "(e.g. EDS maps beside HAADF). Leave empty for one channel.",
    "keep_ids": "Match the new IDs (colours) to this image's previous result.",
    "all_images": "Also label every other open 2-D Image layer with the communities of this "
    "image (same kind of region = same label and colour across a series).",
}


#: *learn with* choices: the pixel classifier's kind (None: the default; chips: not pixels)
_LEARN_WITH = {
    "pixel classifier": None,
    "forest pixel classifier": "random_forest",
    "neural pixel classifier": "mlp",
    "chip classifier": None,
}


class ChipCommunitiesWidget(Dock):
    """Dock: settings, Run/Cancel, Labels result, table, gallery, corrections."""

    title = "Chip communities"

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None, *, sync=False):
        import napari
        from magicgui.widgets import Select

        from ..cluster import series  # noqa: F401 - import now, not on the first Run
        from ..cluster.pipeline import ClusterParams

        # napari's one-time Labels set-up (~0.4 s) when the dock opens, not when results arrive
        napari.layers.Labels(np.zeros((2, 2), np.int32))
        super().__init__(napari_viewer, sync=sync)
        self.result = None
        self.results: dict[str, Any] = {}
        self.model = None
        self.source_name: str | None = None
        two_d = _is_2d
        self.add_section("Input")
        self.image = self.add_layer_choice(
            "image", napari.layers.Image, tooltip=TIPS["image"], filter=two_d
        )

        def _channel_choices(*_):
            if self.viewer is None:
                return []
            chosen = self.image.value
            return [
                (ly.name, ly)
                for ly in self.viewer.layers
                if isinstance(ly, napari.layers.Image) and _is_2d(ly) and ly is not chosen
            ]

        self.channels = Select(
            choices=_channel_choices, name="channels", label="extra channels", value=[]
        )
        self.channels.tooltip = TIPS["channels"]
        self.channels.native.setMaximumHeight(70)
        self.params["channels"] = self.channels
        self.append(self.channels)
        self.image.changed.connect(lambda *_: self.channels.reset_choices())
        # the pixel size is read from the layer (0 = auto: unknown); override it if wrong
        self.form_input = SpecForm(self, ClusterParams, only=("pixel_size",))
        self.pixel_size = self.form_input["pixel_size"]
        self.link_pixel_size(self.image, self.pixel_size, unit="Å")

        self.add_section("Chips and features")
        # every parameter of the workflow, declared once in ClusterParams; the advanced
        # ones in a collapsed group, so the form fits a 1080 px screen with its Run button
        self.form = SpecForm(self, ClusterParams, skip=("pixel_size",))
        for name in ("chip", "stride", "features", "weights", "k", "refine"):
            setattr(self, name, self.form[name])
        self.merge = self.form["merge_to"]
        self.keep_ids = self.add_param(
            "keep_ids", True, label="keep IDs of previous run", tooltip=TIPS["keep_ids"]
        )
        self.all_images = self.add_param(
            "all_images", False, label="apply to all open images", tooltip=TIPS["all_images"]
        )
        self.chip_info = self.add_label("")
        self.run_button = self.add_button(
            "Run", self.run, tooltip="segment the chosen image (in the background)"
        )

        self.add_section("Result")
        self.summary = self.add_label("")
        self.table = _make_table()
        self.add_native(self.table)
        from qtpy.QtWidgets import QGridLayout, QWidget

        self.gallery = QWidget()
        self.gallery.setLayout(QGridLayout())
        self.gallery_pixmaps: list = []
        self.add_native(self.gallery)
        self.learn_with = self.add_param(
            "learn_with",
            "pixel classifier",
            choices=list(_LEARN_WITH),
            label="learn with",
            tooltip="pixel classifier: trained on exactly the pixels you painted, a random "
            "forest mixed with a small network that also learns from the unpainted pixels (a "
            "new label on a few pixels spreads to every similar region; full resolution); "
            "forest pixel classifier: the forest alone (a new label spreads less far; about "
            "0.15 s less per megapixel); neural pixel classifier: the network alone "
            "(spreads as far, leaks more); chip classifier: each chip takes its footprint's "
            "majority label (older, blocky)",
        )
        self.learn_confident = self.add_param(
            "learn_confident",
            True,
            label="also confident regions",
            tooltip="pixel classifier: also learn from unedited pixels deep inside communities "
            "you did not paint a new label into (half a chip from any boundary)",
        )
        self.learn_button = self.add_button(
            "Learn from corrections",
            self.learn,
            tooltip="train on your edits of the communities layer and relabel every pixel",
        )
        self.save_button = self.add_button(
            "Save model…",
            self.save_model,
            tooltip="save the model (JSON + npz): a pixel classifier for `napari-interfaces "
            "classify --model`, a chip classifier for `napari-interfaces cluster-apply`",
            job=False,
        )
        self.learn_button.enabled = False
        self.save_button.enabled = False

    # ------------------------------------------------------------- inputs
    def params_for(self, src):
        """The validated :class:`ClusterParams` of the form for the image layer ``src``.

        A bad value (or a chip larger than the image) marks its field and raises.
        """
        from ..core.errors import InputError, ParameterError

        size = self._pixel_size(src, self.form_input.value("pixel_size"))
        params = self.form.spec(pixel_size=size)
        try:
            params.check_image(src.data.shape[:2])
        except ParameterError as exc:
            self.form.mark(exc.name, exc.reason)
            raise
        if params.weights is not None and not params.weights.is_file():
            self.form.mark("weights", "no such file")
            raise InputError(f"weights file {params.weights}: no such file")
        return params

    def _data(self, layer) -> np.ndarray:
        data = np.asarray(layer.data)
        return data[..., :3] if layer.rgb else data

    def _pixel_size(self, layer, override: float | None = None) -> float | None:
        """Å per pixel of ``layer`` (``override`` for the chosen image)."""
        from ._layers import to_angstrom

        if override:
            return float(override)
        size, unit = pixel_size_from_layer(layer)
        return None if size is None else to_angstrom(size, unit)

    # ---------------------------------------------------------------- run
    def run(self):
        """Start the segmentation (and the series labelling) as this dock's job."""
        src = self.require_layer(self.image, "an image layer")
        params = self.params_for(src)
        kw: dict[str, Any] = {}
        channels = list(self.channels.value or [])
        ref = [self._data(src)] + [self._data(c) for c in channels]
        others = []
        if self.all_images.value and self.viewer is not None:
            import napari

            skip = {src.name, *(c.name for c in channels)}
            others = [
                ly
                for ly in self.viewer.layers
                if isinstance(ly, napari.layers.Image) and _is_2d(ly) and ly.name not in skip
            ]
            if channels:
                from ..core.errors import InputError

                raise InputError("'apply to all open images' works on single-channel images")
        prev = self._previous(src)
        if self.keep_ids.value and prev is not None and prev.shape == src.data.shape[:2]:
            kw["reference_labels"] = prev
        sizes = [params.pixel_size] + [self._pixel_size(o) for o in others]
        sources = [src, *others]
        return self.run_job(
            _segment_series,
            ref,
            [self._data(o) for o in others],
            params=params,
            pixel_sizes=sizes,
            names=[s.name for s in sources],
            on_done=lambda results: self._done(results, sources),
            description="chip communities",
            **kw,
        )

    def _previous(self, src) -> np.ndarray | None:
        name = result_name(LABELS_PREFIX, src)
        if self.viewer is not None and name in self.viewer.layers:
            return np.asarray(self.viewer.layers[name].data)
        return None

    def _done(self, results, sources) -> None:
        self.results = {}
        for res, src in zip(results, sources):
            self.results[src.name] = res
            self._show_labels(res, src)
        res = results[0]
        self.result = res
        self.source_name = sources[0].name
        self._report(res, extra=len(results) - 1)
        self._fill_table(res.table)
        self._fill_gallery(res)
        self.learn_button.enabled = True

    def _report(self, res, extra: int = 0) -> None:
        s, t = res.settings, res.timings
        how = {"auto": "auto", "user": "set"}.get(s.get("chip_source"), s.get("chip_source"))
        scale = ""
        auto = s.get("chip_auto") or {}
        if auto.get("length_scale_px"):
            scale = f", length scale {auto['length_scale_px']:g} px"
        self.chip_info.value = (
            f"chip {res.grid.chip} px, stride {res.grid.stride} px ({how}{scale})"
        )
        ls = auto.get("length_scale_px")
        if ls and ls < res.grid.chip / 2:
            self.chip_info.value += (
                f". Features of about {ls:g} px are narrower than a chip: their boundaries "
                "come out blocky and thin ones (cracks, pores, thin layers) vanish. Correct a "
                "few pixels and press Learn from corrections (pixel classifier), or use the "
                "Paint to segment dock."
            )
        text = (
            f"{res.n_communities} communities ({res.n_detected} detected), {res.grid.n_chips} "
            f"chips of {res.grid.chip} px ({how}), {t['total']:.2f} s"
        )
        fw = s.get("feature_weighting")
        if fw and fw.get("groups"):
            text += f"; weighting {fw.get('mode')}: " + ", ".join(
                f"{g} w {r['weight']:.2f} (share {r['variance_share']:.2f})"
                for g, r in fw["groups"].items()
            )
        if extra:
            text += f"; applied to {extra} more image{'s' if extra > 1 else ''}"
        self.summary.value = text
        self.set_status(text)

    def _show_labels(self, res, src):
        """Labels named after ``src`` with its scale and units (never replaces user edits)."""
        kw = layer_kwargs(source_layer=src, ndim=2)  # overlays its image exactly
        layer = self._add_labels(res, src, kw)
        self._track_paint(layer)
        return layer

    def _track_paint(self, layer) -> None:
        """Record every pixel painted on ``layer`` (even with the label it already had)."""
        self.painted = np.zeros(np.asarray(layer.data).shape, bool)
        if getattr(self, "_painted_layer", None) is layer:
            return
        self._painted_layer = layer
        em = getattr(layer.events, "paint", None)
        if em is not None:
            em.connect(self._on_paint)

    def _on_paint(self, event) -> None:
        painted = getattr(self, "painted", None)
        if painted is None:
            return
        for atom in getattr(event, "value", None) or []:
            key = getattr(atom, "slice_key", None)
            if key is None:
                continue
            mask = getattr(atom, "mask", None)
            try:
                if mask is None:
                    painted[key] = True
                else:
                    painted[key] |= np.asarray(mask, bool)
            except (IndexError, ValueError, TypeError):
                continue

    def _add_labels(self, res, src, kw):
        return add_or_update_layer(
            self.viewer,
            res.labels,
            "labels",
            name=result_name(LABELS_PREFIX, src),
            opacity=0.5,
            metadata={
                "source": src.name,
                "settings": res.settings,
                "pixel_size": res.pixel_size,
                "pixel_size_unit": res.unit,
            },
            **kw,
        )

    def result_layer(self):
        """The Labels layer of the last run's chosen image (or None)."""
        if self.source_name is None or self.viewer is None:
            return None
        name = result_name(LABELS_PREFIX, self.source_name)
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _fill_table(self, rows):
        from qtpy.QtWidgets import QTableWidgetItem

        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            vals = [
                str(r["id"]),
                f"{r['area_fraction']:.3f}",
                str(r["chips"]),
                ", ".join(f"{v:.3f}" for v in r["mean_intensity"]),
            ]
            for j, v in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(v))

    def _fill_gallery(self, res, n: int = 4, size: int = 40):
        from qtpy.QtCore import Qt
        from qtpy.QtGui import QImage, QPixmap
        from qtpy.QtWidgets import QLabel

        from ..cluster.chips import extract_chips

        grid_lay = self.gallery.layout()
        while grid_lay.count():
            w = grid_lay.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.gallery_pixmaps = []
        for row, r in enumerate(res.table[:10]):
            grid_lay.addWidget(QLabel(str(r["id"])), row, 0)
            idx = np.asarray(r["example_chips"][:n], int)
            if idx.size == 0:
                continue
            chips = extract_chips(res.image, res.grid, idx)[..., 0]
            for col, c in enumerate(chips):
                a = np.ascontiguousarray(np.clip(c * 255, 0, 255).astype(np.uint8))
                qimg = QImage(
                    a.data, a.shape[1], a.shape[0], a.strides[0], QImage.Format.Format_Grayscale8
                ).copy()
                pm = QPixmap.fromImage(qimg).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio)
                lbl = QLabel()
                lbl.setPixmap(pm)
                lbl.setToolTip(f"community {r['id']}, chip {int(idx[col])}")
                grid_lay.addWidget(lbl, row, col + 1)
                self.gallery_pixmaps.append(pm)

    # -------------------------------------------------------- corrections
    def learn(self):
        """Train on the edited labels of the last result and relabel (pixel or chip classifier)."""
        from ..core.errors import InputError

        layer = self.result_layer()
        if self.result is None or layer is None:
            raise InputError("run first, then edit the labels")
        if self.learn_with.value == "chip classifier":
            return self._learn_chips(layer)
        from ..cluster.corrections import learn_pixels_from_corrections

        corrected = np.asarray(layer.data).copy()
        result = self.result
        painted = getattr(self, "painted", None)
        changed = corrected != np.asarray(result.labels)
        painted = (
            changed if painted is None or painted.shape != changed.shape else painted | changed
        )
        confident = self.learn_confident.value
        kind = _LEARN_WITH[self.learn_with.value]

        def _learn(progress=None):
            return learn_pixels_from_corrections(
                result,
                corrected,
                painted=painted,
                include_confident=confident,
                classifier=kind,
                progress=progress,
            )

        def _done(out):
            self.model = out.model
            self._show_corrected(out.labels)
            src = self._source_layer()
            kw = layer_kwargs(source_layer=src, ndim=2) if src is not None else {}
            conf = add_or_update_layer(
                self.viewer,
                out.confidence,
                "image",
                name=result_name("confidence", self.source_name),
                metadata={"pixel_classifier": out.summary()},
                **kw,
            )
            conf.visible = False
            self.save_button.enabled = True
            self.set_status(
                f"relabelled every pixel with a pixel classifier ({out.notes[-1]}; "
                f"{len(out.model.classes)} classes)"
            )

        return self.run_job(_learn, on_done=_done, description="learn from corrections")

    def _source_layer(self):
        if self.viewer is not None and self.source_name in self.viewer.layers:
            return self.viewer.layers[self.source_name]
        return None

    def _show_corrected(self, labels) -> None:
        src = self._source_layer()
        kw = layer_kwargs(source_layer=src, ndim=2) if src is not None else {}
        add_or_update_layer(
            self.viewer,
            labels,
            "labels",
            name=result_name("corrected " + LABELS_PREFIX, self.source_name),
            opacity=0.5,
            **kw,
        )

    def _learn_chips(self, layer):
        from ..cluster.corrections import learn_from_corrections

        corrected = np.asarray(layer.data).copy()
        result, refine = self.result, bool(self.result.settings.get("refine", False))

        def _learn(progress=None):
            return learn_from_corrections(result, corrected, refine=refine)

        def _done(out):
            model, labels, chip_labels = out
            self.model = model
            self.result.chip_labels = chip_labels
            self.result.labels = labels
            self._show_corrected(labels)
            self.save_button.enabled = True
            self.set_status(
                f"relabelled with a classifier fitted on {model.extra.get('n_train_chips')} chips "
                f"({len(model.classes)} classes)"
            )

        return self.run_job(_learn, on_done=_done, description="learn from corrections")

    def save_model(self, path: str | None = None):
        """Save the corrections model (asks where unless ``path`` is given)."""
        from ..core.errors import InputError

        if self.model is None:
            raise InputError("learn from corrections first")
        if path is None:
            path = self.ask_save_path(
                "Save corrections model", "cluster_model.json", "JSON (*.json)"
            )
            if path is None:
                return None
        js, npz = self.model.save(path)
        self.set_status(f"saved {js.name} + {npz.name}")
        return js


def _segment_series(*args, **kwargs):
    """The engine's ``segment_series``; a missing or unreadable file is a one-line input error."""
    from ..cluster.series import segment_series
    from ..core.errors import InputError

    try:
        return segment_series(*args, **kwargs)
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        msg = " ".join(str(exc).split())
        params = kwargs.get("params")
        if (
            params is not None
            and params.features in ("resnet50", "learned")
            and not params.weights
        ):
            msg = (
                f"features={params.features} needs a weights file (choose one under "
                f"'weights file'): {msg}"
            )
        raise InputError(msg) from None


def _is_2d(layer) -> bool:
    return (layer.ndim == 2) and not (layer.rgb and np.asarray(layer.data).ndim != 3)


def _make_table():
    from qtpy.QtWidgets import QTableWidget

    table = QTableWidget(0, 4)
    table.setHorizontalHeaderLabels(["id", "area", "chips", "mean"])
    table.setMaximumHeight(160)
    table.setToolTip("one row per community: ID, area fraction, chips, mean intensity per channel")
    return table
