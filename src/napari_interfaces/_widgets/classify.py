"""The "Paint to segment" dock: a pixel classifier trained live from brush strokes.

Pick an image, press *New scribbles layer* (or pick a Labels layer), paint a
few strokes per class (label 1, 2, ...). While painting, the classifier is
re-trained and the whole image re-labelled off the GUI thread (debounced,
newest request wins); the features of the image are computed once and
cached, so a re-train costs only the classifier. The *classes* layer holds the
painted class values, the *confidence* layer the probability of the chosen
class: paint next where it is low. *Save classifier…* writes JSON + npz (no
pickle); *Apply to layer* labels another image with it (feature scales
follow the layers' pixel sizes). Every result layer has its source layer's
scale and units.

Engine: :mod:`napari_interfaces.classify` (the same workflow as
``napari-interfaces classify``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._dock import Dock
from ._form import SpecForm
from ._layers import layer_kwargs, pixel_size_from_layer, result_name

if TYPE_CHECKING:
    import napari

LIVE_KEY = "live prediction"


def _train_and_predict(image, scribbles, params, unit, cache, progress=None):
    """Engine call of one (re)train: features cached, fit on the strokes, label every pixel."""
    from ..classify.workflow import classify_image

    return classify_image(image, scribbles, params, unit=unit, cache=cache, progress=progress)


def _apply(model, image, pixel_size, unit, series=False, progress=None):
    """Engine call of Apply: one image, or every frame of a series (read frame by frame)."""
    from ..classify.workflow import apply_classifier, apply_to_frames

    if series:
        return apply_to_frames(model, image, pixel_size=pixel_size, unit=unit, progress=progress)
    image = np.asarray(image)
    return apply_classifier(model, image, pixel_size=pixel_size, unit=unit, progress=progress)


def _physical(layer) -> tuple[float | None, str]:
    size, unit = pixel_size_from_layer(layer)
    if not size or unit in (None, "pixel", "px"):
        return None, "pixel"
    from ._layers import canonical_unit

    return float(size), canonical_unit(unit)


def _fit_screen(win) -> None:
    """Shrink the main window back onto its screen (it may have grown when a dock was added)."""
    try:
        screen = win.screen().availableGeometry() if win.screen() else None
        if screen is not None and win.height() > screen.height():
            win.resize(win.width(), screen.height())
    except RuntimeError:  # window closed meanwhile
        pass


class PaintToSegmentWidget(Dock):
    """Dock: image + scribbles -> live classes and confidence; save; apply to other layers."""

    title = "Paint to segment"

    def __init__(self, napari_viewer: napari.viewer.Viewer | None = None, *, sync=False):
        import napari

        from ..classify.features import FeatureCache
        from ..classify.workflow import ClassifyParams

        super().__init__(napari_viewer, sync=sync)
        self.cache = FeatureCache(max_items=2)
        self.result = None
        self.model = None
        self._watched = None
        self.image = self.add_layer_choice(
            "image",
            napari.layers.Image,
            tooltip="the 2-D image (grey or RGB) to segment",
            filter=lambda layer: layer.ndim == 2 or (layer.rgb and layer.ndim == 3),
            on_change=self._image_changed,
        )
        self.scribbles = self.add_layer_choice(
            "scribbles",
            napari.layers.Labels,
            nullable=True,
            tooltip="Labels layer with your strokes: 0 = unpainted, 1, 2, ... = classes "
            "(the result uses the same values)",
            on_change=self._watch_scribbles,
        )
        self.live = self.add_param(
            "live",
            True,
            label="live update",
            tooltip="re-train and re-label after every stroke (off the GUI thread, debounced)",
        )
        # the feature scales (advanced); the pixel size comes from the image layer
        self.form = SpecForm(self, ClassifyParams, skip=("pixel_size",))
        self.add_button(
            "New scribbles layer",
            self.new_scribbles,
            tooltip="add an empty Labels layer over the image and start painting label 1",
            job=False,
        )
        self.add_button(
            "Train and predict",
            self.run,
            tooltip="train the pixel classifier on the strokes and label every pixel",
        )
        self.add_section("Reuse")
        self.target = self.add_layer_choice(
            "apply_to",
            napari.layers.Image,
            label="apply to",
            tooltip="another image to label with the trained classifier (its pixel size is "
            "taken into account when both layers have one); a stack (a time or focal series) "
            "gets every frame labelled",
            filter=lambda layer: layer.ndim in (2, 3),  # napari's ndim: no colour axis
        )
        self.add_button("Apply to layer", self.apply, tooltip="label the 'apply to' image")
        self.add_button(
            "Save classifier…",
            self.save,
            tooltip="save the classifier (JSON + npz, no pickle) for "
            "`napari-interfaces classify --model`",
            job=False,
        )
        self.info = self.add_label("Paint at least two classes.")
        self._watch_scribbles()
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, self._tab_with_chip_communities)

    def _tab_with_chip_communities(self) -> None:
        """Open as a tab beside the Chip communities dock when that one is open.

        The two docks are one workflow (communities, then corrections or
        strokes); a tab keeps the dock column usable on a 1080 px screen.
        """
        try:
            from qtpy.QtCore import QTimer
            from qtpy.QtWidgets import QDockWidget, QMainWindow

            mine = self.native.parent()
            while mine is not None and not isinstance(mine, QDockWidget):
                mine = mine.parent()
            win = mine.parent() if mine is not None else None
            if not isinstance(win, QMainWindow):
                return
            others = [
                d
                for d in win.findChildren(QDockWidget)
                if d is not mine
                and d.isVisible()
                and not d.isFloating()
                and win.dockWidgetArea(d) == win.dockWidgetArea(mine)
                and "(napari-interfaces)" in d.windowTitle()
            ]
            # beside Chip communities when open (one workflow: proposal, then corrections)
            other = next(
                (d for d in others if d.windowTitle().startswith("Chip communities")), None
            )
            if other is None:
                return
            win.tabifyDockWidget(other, mine)
            mine.raise_()
            # adding this dock to the column may have grown the window past the screen;
            # as a tab it needs no extra height
            _fit_screen(win)
            QTimer.singleShot(0, lambda: _fit_screen(win))
        except RuntimeError:  # the dock was closed before the timer fired
            return

    # ------------------------------------------------------------ layers
    def _image_changed(self, *_: Any) -> None:
        self.cache.clear()

    def new_scribbles(self):
        """Add an empty Labels layer over the image (its scale and units) and select it."""
        layer = self.require_layer(self.image, "an image")
        shape = layer.data.shape[:2]
        kw = layer_kwargs(source_layer=layer, ndim=2, name=result_name("scribbles", layer.name))
        kw["name"] = kw.get("name") or "scribbles"
        scrib = self.viewer.add_labels(np.zeros(shape, np.uint8), **kw)
        scrib.selected_label = 1
        scrib.brush_size = max(3, int(min(shape) / 150))
        try:
            scrib.mode = "paint"
        except (ValueError, AttributeError):  # pragma: no cover - old napari
            pass
        self.scribbles.reset_choices()
        self.scribbles.value = scrib
        return scrib

    def _watch_scribbles(self, *_: Any) -> None:
        old = self._watched
        if old is not None:
            for name in ("paint", "data", "set_data"):
                em = getattr(old.events, name, None)
                if em is not None:
                    try:
                        em.disconnect(self._stroke)
                    except (TypeError, ValueError, RuntimeError):
                        pass
        layer = self.scribbles.value
        self._watched = layer
        if layer is not None:
            for name in ("paint", "data"):
                em = getattr(layer.events, name, None)
                if em is not None:
                    em.connect(self._stroke)

    def _stroke(self, *_: Any) -> None:
        """A stroke was painted (or the data set): schedule a debounced live re-train."""
        if not self.live.value:
            return
        try:
            args = self._inputs()
        except Exception:  # noqa: BLE001 - not ready yet (one class painted, no image)
            return
        if len(np.unique(args[1][args[1] > 0])) < 2:
            self.info.value = "Paint at least two classes."
            return
        self.run_latest(LIVE_KEY, _train_and_predict, *args, on_done=self._show, delay_ms=400)

    def _inputs(self):
        from ..core.errors import InputError

        image = self.require_layer(self.image, "an image")
        scrib = self.require_layer(self.scribbles, "a scribbles Labels layer")
        data = np.asarray(image.data)
        s = np.asarray(scrib.data)
        if s.shape != data.shape[:2]:
            raise InputError(
                f"scribbles {scrib.name!r} ({s.shape}) and image {image.name!r} "
                f"({data.shape[:2]}) differ in shape"
            )
        size, unit = _physical(image)
        params = self.form.spec(pixel_size=size)
        return data, s.copy(), params, unit, self.cache

    # ------------------------------------------------------------ actions
    def run(self):
        """Train on the strokes and label the image (a job)."""
        args = self._inputs()
        return self.run_job(
            _train_and_predict, *args, on_done=self._show, description="train and predict"
        )

    def _show(self, result) -> None:
        image = self.image.value
        self.result, self.model = result, result.model
        self._put(result, image, "classes", "confidence")
        t = result.timings
        s = result.summary()
        self.info.value = (
            f"{len(s['classes'])} classes; mean confidence {s['mean_confidence']:.2f}, "
            f"{100 * s['low_confidence_fraction']:.0f} % of pixels below 0.6 (paint there next); "
            f"fit {t.get('fit', 0):.2f} s, predict {t.get('predict', 0):.2f} s"
        )

    def _put(self, result, image, key_labels: str, key_conf: str) -> None:
        md = {"pixel_classifier": result.summary()}
        kw = layer_kwargs(source_layer=image, ndim=result.labels.ndim)
        self.put_layer(
            key_labels,
            result.labels,
            "labels",
            name=result_name("classes", image.name),
            metadata=md,
            **kw,
        )
        conf = self.put_layer(
            key_conf,
            result.confidence,
            "image",
            name=result_name("confidence", image.name),
            metadata=md,
            **kw,
        )
        conf.contrast_limits = (0.0, 1.0)
        conf.colormap = "magma"
        conf.visible = False

    def apply(self):
        """Label the 'apply to' image with the trained classifier (a job)."""
        from ..core.errors import InputError

        if self.model is None:
            raise InputError("train first: paint strokes and press Train and predict")
        layer = self.require_layer(self.target, "an image to apply to")
        size, unit = _physical(layer)
        series = layer.ndim == 3  # napari's ndim counts no colour axis
        return self.run_job(
            _apply,
            self.model,
            layer.data,  # a series stays lazy (dask): read frame by frame in the job
            size,
            unit,
            series,
            on_done=lambda r: self._put(r, layer, f"classes:{id(layer)}", f"conf:{id(layer)}"),
            description="apply classifier",
        )

    def save(self, path=None):
        """Save the classifier (asks where unless ``path`` is given)."""
        from ..core.errors import InputError

        if self.model is None:
            raise InputError("train first: nothing to save")
        if path is None:
            path = self.ask_save_path("Save pixel classifier", "classifier.json", "JSON (*.json)")
            if path is None:
                return None
        js, _npz = self.model.save(path)
        self.set_status(f"saved {js} (+ .npz)")
        return js
