"""The "Segment micrograph" dock: U-Net segmentation, particles, uncertainty, fine-tuning.

1. Pick an **image** layer; its **pixel size** (Å) is read from the layer
   (``scale`` + ``units``, or the file's metadata) and can be overridden;
   0 = unknown: it is then estimated from the lattice fringes and the
   particle size (or the model's own is assumed), and the dock shows which
   was used, the cue that decided and how sure.
2. Pick a **model** (the shipped default or any trained / fine-tuned one;
   its metadata is shown) and press **Segment**: tiled inference in the
   background adds the class labels, the particles (touching ones split; a
   Labels layer whose ``features`` hold the particle table) and, with
   *uncertainty*, an uncertainty Image layer; the size histogram and the
   least certain particles (click one to go to it) appear in the dock.
3. Correct the labels with napari's brush / fill / eraser (least certain
   particles first), then press **Fine-tune**: the model trains a few epochs
   on the corrected image in the background and is saved as a new model
   version with its lineage. The previous model stays in the list.

The engine work is :func:`segment_job` / :func:`finetune_job` (no Qt); the
dock is the form plus layer glue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._dock import Dock, theme_colors

if TYPE_CHECKING:
    import napari

__all__ = ["SegmentWidget", "finetune_job", "pixel_size_how", "segment_job"]


def segment_job(
    image, model_name: str, params=None, progress=None, *, series: bool = False, **values
):
    """Engine work of **Segment**: ``(SegmentationResult, model metadata)``.

    ``params`` is a :class:`~napari_interfaces.segment.inference.SegmentParams`
    (or its fields as ``values``). ``series``: ``image`` is a stack of frames
    ``(n, H, W)`` (also a lazy one), segmented frame by frame
    (:func:`~napari_interfaces.segment.series.segment_frames`; a
    :class:`~napari_interfaces.segment.series.SeriesSegmentation`).
    """
    from ..segment.inference import segment_image
    from ..segment.models import load_model

    model = load_model(model_name)
    if series:  # every frame, read one at a time, with one pixel size
        from ..segment.series import segment_frames

        return segment_frames(image, model, params, progress=progress, **values), model.metadata
    res = segment_image(image, model, params, progress=progress, **values)
    return res, model.metadata


def pixel_size_how(res) -> str:
    """Where the pixel size of a :class:`SegmentationResult` came from, in one line.

    For an estimate: the cue that decided and how sure, read from
    ``res.estimate`` (e.g. ``"estimated: fringes as {220}, chosen by particle
    size, p = 0.62"``).
    """
    source = res.pixel_size_source
    if source == "given":
        return "from the layer / your entry"
    if source == "estimated":
        est = res.estimate
        return "estimated" if est is None else f"estimated: {est.describe()}"
    return "unknown: the model's own assumed, not rescaled"


def finetune_job(
    model_name: str,
    image,
    labels,
    params=None,
    data_description: str = "",
    progress=None,
    **values,
):
    """Engine work of **Fine-tune**: ``(new model name, path)``.

    ``params`` is a :class:`~napari_interfaces.segment.finetune.FinetuneParams`
    (or its fields as ``values``). ``image`` and ``labels`` are one 2D pair,
    or two lists of them (the corrected frames of a series).
    """
    from ..segment.finetune import finetune

    pairs = list(zip(image, labels)) if isinstance(image, list) else [(image, labels)]
    model, path = finetune(
        model_name,
        pairs,
        params,
        data_description=data_description,
        progress=progress,
        **values,
    )
    return model.name, path


def _is_micrograph(layer: Any) -> bool:
    """A 2D image (gray or RGB) or a series of them: not a 3D volume (an APT composition)."""
    return int(layer.ndim) == 2 or _is_series(layer)


def _is_series(layer: Any) -> bool:
    """A stack of 2D frames (time, focus, tilt): its first axis is not a length.

    *Open as micrograph* records ``metadata["frames"]``; any other 3D gray image
    whose first axis has no length unit (napari's ``pixel``) counts too. A
    volume with a length on every axis (an APT composition) does not.
    """
    if int(layer.ndim) != 3 or getattr(layer, "rgb", False):
        return False
    if (getattr(layer, "metadata", None) or {}).get("frames"):
        return True
    units = [str(u) for u in (getattr(layer, "units", None) or ())]
    return bool(units) and units[0] in ("pixel", "")


def _model_choices(*_: Any) -> list[tuple[str, str]]:
    from ..segment.models import list_models

    try:
        return [(m.name, str(m.path)) for m in list_models()] or [("default", "default")]
    except Exception:  # an unreadable models folder must not break the dock
        return [("default", "default")]


class SegmentWidget(Dock):
    """Segment micrographs with a U-Net; particles, uncertainty; fine-tune from corrections."""

    title = "Segment micrograph"

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None, sync: bool = False):
        import napari

        from ..segment.finetune import FinetuneParams
        from ..segment.inference import SegmentParams
        from ._form import SpecForm, tooltip

        super().__init__(napari_viewer, sync=sync)
        self.result = None
        self._source = None
        self.image = self.add_layer_choice(
            "image",
            napari.layers.Image,
            tooltip="the micrograph to segment (2D, gray or RGB), or a series of frames "
            "(each frame segmented, one pixel size); 3D volumes (e.g. APT composition) are not "
            "listed",
            filter=_is_micrograph,
        )
        # the pixel size is filled from the layer (any value lands; implausible ones are
        # reset below), so the dock makes this field itself; 0 = unknown
        self.pixel_size = self.add_param(
            "pixel_size",
            0.0,
            label="pixel size (Å)",
            min=0.0,
            max=1e9,
            step=0.001,
            decimals=4,
            tooltip=tooltip(SegmentParams.param_of("pixel_size"))
            + "; read from the layer (scale + units) or the file: override it if wrong, "
            "0 = unknown",
        )
        self.link_pixel_size(self.image, self.pixel_size, unit="Å")
        self.image.changed.connect(self._check_pixel_size)
        self._check_pixel_size()
        self.model = self.add_param(
            "model",
            "default",
            choices=_model_choices,
            tooltip="the shipped default model or one you trained / fine-tuned "
            "(napari-interfaces train, or Fine-tune below)",
            on_change=self._show_model,
        )
        self.model_info = self.add_label("")
        self.refresh_button = self.add_button(
            "Rescan models", self.refresh_models, tooltip="rescan the models folder", job=False
        )
        self.form = SpecForm(self, SegmentParams, skip=("pixel_size",))
        self.uncertainty = self.form["uncertainty"]
        self.particles = self.form["particles"]
        self.estimate = self.form["estimate_pixel_size"]
        self.segment_button = self.add_button(
            "Segment", self.run, tooltip="segment the image in the background"
        )
        self.used_label = self.add_label("")
        self.apply_button = self.add_button(
            "Apply pixel size to image",
            self.apply_pixel_size,
            tooltip="the image has no physical pixel size: give it (and its results) the "
            "estimated / assumed one the segmentation used, in Å",
            job=False,
        )
        self.apply_button.visible = False
        self._result_layers: list[Any] = []
        # result views in the Segment section, shown once there is a result
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        from qtpy.QtWidgets import QListWidget

        self._plot = FigureCanvasQTAgg(Figure(figsize=(3.2, 2.2), dpi=90))
        self._plot.setMinimumHeight(160)
        self._plot.setToolTip("equivalent diameters of the particles (nm)")
        self._plot_box = self.add_native(self._plot)
        self._plot_box.visible = False
        self._certain_list = QListWidget()
        self._certain_list.setMinimumHeight(90)
        self._certain_list.setToolTip("least certain particles first: click one to go to it")
        self._certain_list.itemClicked.connect(self._go_to)
        self._certain_box = self.add_native(self._certain_list)
        self._certain_box.visible = False

        self.add_section("Fine-tune from corrected labels")
        self.labels = self.add_layer_choice(
            "labels",
            napari.layers.Labels,
            label="corrected labels",
            tooltip="the class labels you corrected (0 = background, 1 = particle)",
        )
        # the pixel size comes from the labels' metadata; the batch size is the engine's
        self.tune_form = SpecForm(
            self, FinetuneParams, skip=("pixel_size", "batch_size", "patience", "threads")
        )
        self.epochs = self.tune_form["epochs"]
        self.freeze = self.tune_form["freeze_encoder"]
        self.finetune_button = self.add_button(
            "Fine-tune", self.fine_tune, tooltip="train a new model version on the corrections"
        )
        self._show_model()

    def _check_pixel_size(self, *_: Any) -> None:
        """A layer pixel size outside 0.005–50 Å (e.g. a 1-dpi TIFF tag) counts as unknown."""
        from ..segment.inference import PIXEL_SIZE_RANGE
        from ._layers import pixel_size_from_layer, to_angstrom

        layer = self.image.value
        if layer is None:
            return
        size, unit = pixel_size_from_layer(layer)
        if size is None or unit not in ("Å", "nm"):
            return
        a = to_angstrom(size, unit)
        if not PIXEL_SIZE_RANGE[0] <= a <= PIXEL_SIZE_RANGE[1]:
            self.pixel_size.value = 0.0
            self.set_status(
                f"{layer.name}: pixel size {a:.3g} Å is implausible for HRTEM; treated as "
                "unknown (enter it if you know it)"
            )

    # -- models ------------------------------------------------------------
    def refresh_models(self, select: str | None = None) -> None:
        """Rescan the models folder (and select ``select``, a path or name)."""
        self.model.reset_choices()
        if select is not None:
            for name, path in _model_choices():
                if select in (name, path):
                    self.model.value = path
                    break
        self._show_model()

    def _show_model(self, *_: Any) -> None:
        from ..segment.models import model_info

        try:
            self.model_info.value = model_info(self.model.value or "default").summary()
        except Exception as exc:  # shown, not raised
            self.model_info.value = f"model not usable: {str(exc).splitlines()[0]}"

    @property
    def model_name(self) -> str:
        """Name of the selected model (as the model list shows it)."""
        for name, path in _model_choices():
            if path == self.model.value:
                return name
        return str(self.model.value)

    # -- segment -------------------------------------------------------------
    def run(self):
        """Segment the chosen image (returns the job)."""
        layer = self.require_layer(self.image)
        series = _is_series(layer)
        if series:
            data = layer.data  # read one frame at a time in the job (also a lazy stack)
        else:
            data = np.asarray(layer.data)
            if data.ndim != 2 and not layer.rgb:
                from ..core.errors import InputError

                raise InputError(f"{layer.name}: expected a 2D image, got shape {data.shape}")
        ps = float(self.pixel_size.value) or None
        params = self.form.spec(pixel_size=ps)  # a bad value is marked on its field
        self._source = layer
        return self.run_job(
            segment_job,
            data,
            self.model.value or "default",
            params,
            series=series,
            on_done=self._segmented,
            description=f"segmenting {len(data)} frames" if series else "segmenting micrograph",
        )

    def _layer_kw(self, res) -> dict:
        """Result layers get exactly the source image's scale, translate and units.

        The engine returns its results on the image's own pixel grid, so they
        overlay the image exactly whatever pixel size it worked at; an
        estimated or assumed size is recorded in the metadata and offered with
        **Apply pixel size to image**, never drawn as a second unit system.
        """
        from ._layers import layer_kwargs

        return layer_kwargs(source_layer=self._source, ndim=res.labels.ndim)

    def apply_pixel_size(self) -> None:
        """Give the source image (and its results) the pixel size the engine used, in Å."""
        from ..core.errors import InputError

        res, src = self.result, self._source
        if res is None or src is None or src not in self.viewer.layers:
            raise InputError("segment an image first")
        ps = float(res.pixel_size)
        for layer in [src, *self._result_layers]:
            if layer in self.viewer.layers:
                layer.scale = (*tuple(layer.scale)[:-2], ps, ps)
                layer.units = (*tuple(str(u) for u in layer.units)[:-2], "Å", "Å")
                layer.metadata["pixel_size"] = ps
                layer.metadata["pixel_size_unit"] = "Å"
                layer.metadata["pixel_size_source"] = f"{res.pixel_size_source} (applied)"
                if res.estimate is not None:
                    layer.metadata["pixel_size_estimate"] = res.estimate.to_dict()
        self.apply_button.visible = False
        if self.viewer is not None:
            from ._layers import scale_bar_overlay

            scale_bar_overlay(self.viewer).visible = True
            self.viewer.reset_view()
        self.pixel_size.value = ps
        self.set_status(f"{src.name}: pixel size set to {ps:.4g} Å ({res.pixel_size_source})")

    def _segmented(self, result) -> None:
        from ._layers import add_or_update_layer, result_name

        res, _meta = result
        self.result = res
        src = self._source
        kw = self._layer_kw(res)
        from ._layers import pixel_size_from_layer

        src_size, src_unit = pixel_size_from_layer(src)
        calibrated = src_size is not None and src_unit in ("Å", "nm")
        md = {
            "model": self.model_name,
            # the pixel size the engine worked at (Å); the layer's own scale is the image's
            "pixel_size_used": res.pixel_size,
            "pixel_size_used_unit": "Å",
            "pixel_size_source": res.pixel_size_source,
            "source_image": src.name,
        }
        if res.estimate is not None:
            # which cue decided, the candidates and how sure (see segment/scale.py)
            md["pixel_size_estimate"] = res.estimate.to_dict()
        if calibrated:
            md["pixel_size"] = res.pixel_size
            md["pixel_size_unit"] = "Å"

        def put(data, kind: str, what: str, **style):
            """Add or update the result layer ``what [source]``, with the shared metadata."""
            layer = add_or_update_layer(
                self.viewer, data, kind, name=result_name(what, src), metadata=dict(md), **style,
                **kw,
            )  # fmt: skip
            self._result_layers.append(layer)
            return layer

        self._result_layers = []
        labels = put(res.labels, "labels", "labels", opacity=0.5)
        if res.instances is not None:
            layer = put(res.instances, "labels", "particles", opacity=0.6)
            layer.features = res.particles.features()
        if res.uncertainty is not None:
            put(
                res.uncertainty, "image", "uncertainty", colormap="magma", opacity=0.6,
                blending="additive", contrast_limits=(0.0, 1.0),
            )  # fmt: skip
        try:
            self.labels.reset_choices()
            self.labels.value = labels
        except (ValueError, KeyError):
            pass
        how = pixel_size_how(res)
        text = f"pixel size used: {res.pixel_size:.4g} Å ({how}); {(res.labels > 0).mean():.1%} "
        text += "foreground"
        if not calibrated:
            text += (
                f". {src.name} has no physical pixel size: results are drawn in its pixels; "
                "Apply pixel size to image to calibrate it"
            )
        self.apply_button.visible = not calibrated
        if res.particles is not None:
            text += f"; {len(res.particles)} particles"
        self.used_label.value = text
        self.set_status(f"{text}. Correct the labels, then Fine-tune")
        if res.particles is not None:
            self._show_histogram(res.particles)
        if res.particles is not None and res.uncertainty is not None:
            self._show_least_certain(res.particles)

    def _show_histogram(self, table) -> None:
        colors = theme_colors(self.viewer)
        self._plot_box.visible = True
        fig = self._plot.figure
        fig.clear()
        fig.patch.set_facecolor(colors["background"])
        ax = fig.add_subplot()
        ax.set_facecolor(colors["background"])
        d = np.asarray(table["equivalent_diameter_nm"])
        if d.size:
            ax.hist(d, bins=min(20, max(5, d.size // 2)), color=colors.get("highlight", "#4c72b0"))
        ax.set_xlabel("equivalent diameter (nm)", color=colors["text"], fontsize=8)
        ax.set_ylabel("particles", color=colors["text"], fontsize=8)
        ax.tick_params(colors=colors["text"], labelsize=7)
        for s in ax.spines.values():
            s.set_color(colors["text"])
        fig.tight_layout()
        self._plot.draw_idle()

    def _show_least_certain(self, table, fraction: float = 0.1) -> None:
        from qtpy.QtWidgets import QListWidgetItem

        from ..segment.uncertainty import least_certain

        self._certain_box.visible = True
        self._certain_list.clear()
        ids = least_certain(table["uncertain_area_nm2"], fraction, minimum=min(5, len(table)))
        for pid in ids:
            i = pid - 1
            item = QListWidgetItem(
                f"#{pid}: uncertain area {table['uncertain_area_nm2'][i]:.3f} nm², "
                f"{table['equivalent_diameter_nm'][i]:.2f} nm"
            )
            frame = int(table["frame"][i]) if "frame" in table.columns else None
            item.setData(
                256, (float(table["centroid_y_px"][i]), float(table["centroid_x_px"][i]), frame)
            )
            self._certain_list.addItem(item)

    def least_certain_ids(self) -> list[int]:
        """Particle ids listed in the dock (least certain first)."""
        return [
            int(self._certain_list.item(i).text().split(":")[0][1:])
            for i in range(self._certain_list.count())
        ]

    def _go_to(self, item) -> None:
        if self.viewer is None or self._source is None:
            return
        y, x, frame = item.data(256)
        scale = self._source.scale[-2:]
        trans = self._source.translate[-2:]
        if frame is not None:  # a series: show the particle's frame
            step = list(self.viewer.dims.current_step)
            step[-3] = frame
            self.viewer.dims.current_step = tuple(step)
        self.viewer.camera.center = (trans[0] + y * scale[0], trans[1] + x * scale[1])

    # -- fine-tune -------------------------------------------------------------
    def fine_tune(self):
        """Fine-tune the selected model on the corrected labels (returns the job)."""
        from ..core.errors import InputError

        labels_layer = self.require_layer(self.labels, "the corrected Labels layer")
        src_name = (labels_layer.metadata or {}).get("source_image")
        if src_name and self.viewer is not None and src_name in self.viewer.layers:
            image_layer = self.viewer.layers[src_name]
        else:
            image_layer = self.require_layer(self.image)
        if np.shape(image_layer.data)[:2] != np.shape(labels_layer.data)[:2]:
            raise InputError(
                f"{labels_layer.name} and {image_layer.name} differ in shape; choose the labels "
                "of this image"
            )
        md = labels_layer.metadata or {}
        ps = (
            md.get("pixel_size_used")
            or md.get("pixel_size")
            or (float(self.pixel_size.value) or None)
        )
        params = self.tune_form.spec(pixel_size=ps)
        image, labels = image_layer.data, labels_layer.data
        what = f"napari layers {image_layer.name!r} / {labels_layer.name!r}"
        if np.ndim(labels) == 3 and not image_layer.rgb:  # a series: the corrected frames
            frames = self._corrected_frames(labels_layer)
            how = "corrected"
            if not frames:
                frames, how = [self._current_frame(labels_layer)], "shown"
            image = [np.asarray(image[i]) for i in frames]
            labels = [np.asarray(labels[i]) for i in frames]
            names = ", ".join(str(i + 1) for i in frames)
            what += f", frame{'s' if len(frames) > 1 else ''} {names} of {len(labels_layer.data)}"
            self.set_status(f"fine-tuning on frame(s) {names} ({how})")
        else:
            image, labels = np.asarray(image), np.asarray(labels)
        return self.run_job(
            finetune_job,
            self.model.value or "default",
            image,
            labels,
            params,
            what,
            on_done=self._tuned,
            description="fine-tuning U-Net",
        )

    def _corrected_frames(self, layer) -> list[int]:
        """Frames of a series' labels that differ from this dock's segmentation of it."""
        res = self.result
        ref = None if res is None else np.asarray(res.labels)
        data = layer.data
        if ref is None or ref.shape != tuple(np.shape(data)):
            return []
        return [i for i in range(len(ref)) if not np.array_equal(np.asarray(data[i]), ref[i])]

    def _current_frame(self, layer) -> int:
        """Index of the frame of a stack layer that the viewer shows."""
        n = int(np.shape(layer.data)[0])
        if self.viewer is None:
            return 0
        point = layer.world_to_data(self.viewer.dims.point[-layer.ndim :])
        return int(min(max(round(float(point[0])), 0), n - 1))

    def _tuned(self, result) -> None:
        name, path = result
        self.refresh_models(select=str(path))
        self.set_status(f"saved new model {name} ({path}); the previous model is unchanged")
