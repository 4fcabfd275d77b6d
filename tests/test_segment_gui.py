"""Segment micrograph and Simulated database docks with a real viewer (tiny model, tiny data)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.gui


@pytest.fixture
def tiny_model():
    import torch

    from napari_interfaces.segment.models import save_model, user_models_dir
    from napari_interfaces.segment.unet import UNet, UNetConfig

    torch.manual_seed(0)
    net = UNet(UNetConfig(width=4))
    return save_model(
        net,
        user_models_dir() / "unet_tiny.pt",
        {"pixel_size": 0.5, "classes": ["background", "particle"], "description": "tiny"},
    )


def test_segment_and_finetune_dock(make_napari_viewer, tiny_model):
    from napari_interfaces._widgets.segment import SegmentWidget

    viewer = make_napari_viewer(show=True)
    img = np.random.default_rng(0).random((96, 80)).astype(np.float32)
    # a simulated 0.5 Å/px image: the pixel size comes from the layer's scale + units
    viewer.add_image(img, name="mic", scale=(0.5, 0.5), units=("angstrom", "angstrom"))
    w = SegmentWidget(viewer, sync=True)
    assert w.pixel_size.value == pytest.approx(0.5)
    # an implausible pixel size (here 100 Å; a 1-dpi TIFF tag gives 2.54e8 Å) is not used
    viewer.add_image(img, name="dpi", scale=(100.0, 100.0), units=("angstrom", "angstrom"))
    w.image.value = viewer.layers["dpi"]
    assert w.pixel_size.value == 0 and "implausible" in w.status.value
    w.image.value = viewer.layers["mic"]
    assert w.pixel_size.value == pytest.approx(0.5)
    viewer.layers.remove("dpi")
    w.model.value = str(tiny_model)
    assert "tiny" in w.model_info.value
    w.uncertainty.value = True
    job = w.run()
    assert job.state == "done", job.error
    labels = viewer.layers["labels [mic]"]
    assert labels.data.shape == (96, 80)
    # every result layer carries the image's scale and units
    for name in ("labels [mic]", "particles [mic]", "uncertainty [mic]"):
        layer = viewer.layers[name]
        assert tuple(layer.scale) == (0.5, 0.5) and str(layer.units[-1]) == "angstrom"
    assert "pixel size used: 0.5 Å" in w.used_label.value
    res = w.result
    assert res.pixel_size_source == "given" and res.uncertainty is not None
    feats = viewer.layers["particles [mic]"].features
    assert len(feats) == len(res.particles) and "equivalent_diameter_nm" in feats
    assert w.least_certain_ids() == [
        int(i)
        for i in np.argsort(-res.particles["uncertain_area_nm2"], kind="stable")[
            : len(w.least_certain_ids())
        ]
        + 1
    ]
    # the user overrides the pixel size: 0 = unknown, no estimate -> the model's is assumed
    w.pixel_size.value = 0.0
    w.estimate.value = False
    w.uncertainty.value = False
    assert w.run().state == "done"
    assert w.result.pixel_size_source == "assumed" and "not rescaled" in w.used_label.value
    # correct the labels: a painted disc, then fine-tune a new version
    yy, xx = np.mgrid[:96, :80]
    labels.data = ((yy - 48) ** 2 + (xx - 40) ** 2 < 20**2).astype(np.uint8)
    w.labels.value = labels
    w.epochs.value = 1
    job = w.fine_tune()
    assert job.state == "done", job.error
    name, path = job.result
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["lineage"]["parent"] == "unet_tiny" and meta["lineage"]["n_images"] == 1
    assert meta["lineage"]["settings"]["freeze_encoder"] is True
    assert tiny_model.is_file()  # the previous model stays
    assert w.model.value == str(path) and w.model_name == name


def test_segment_dock_segments_every_frame_of_a_series(make_napari_viewer, tiny_model):
    """A stack of frames (as Open as micrograph gives it) is listed; every frame is segmented
    with one pixel size into stacks with the stack's scale; fine-tuning takes the frame shown."""
    from napari_interfaces._widgets.segment import SegmentWidget
    from napari_interfaces.segment.models import load_model
    from napari_interfaces.segment.series import segment_frames

    viewer = make_napari_viewer(show=True)
    rng = np.random.default_rng(1)
    stack = rng.random((3, 64, 56)).astype(np.float32)
    viewer.add_image(stack, name="series", scale=(1.0, 0.5, 0.5),
                     units=("pixel", "angstrom", "angstrom"), metadata={"frames": 3})  # fmt: skip
    w = SegmentWidget(viewer, sync=True)
    assert w.image.value is viewer.layers["series"] and w.pixel_size.value == pytest.approx(0.5)
    w.model.value = str(tiny_model)
    job = w.run()
    assert job.state == "done", job.error
    labels = viewer.layers["labels [series]"]
    ref = segment_frames(stack, load_model(tiny_model), pixel_size=0.5)
    assert np.array_equal(labels.data, ref.labels)
    for name in ("labels [series]", "particles [series]"):
        layer = viewer.layers[name]
        assert tuple(layer.scale) == (1.0, 0.5, 0.5) and str(layer.units[-1]) == "angstrom"
    assert "pixel size used: 0.5 Å" in w.used_label.value
    # nothing corrected yet: fine-tuning takes the frame shown (frame 3)
    viewer.dims.set_current_step(0, 2)
    w.labels.value = labels
    w.epochs.value = 1
    job = w.fine_tune()
    assert job.state == "done", job.error
    lineage = json.loads(job.result[1].with_suffix(".json").read_text())["lineage"]
    assert lineage["data"].endswith("frame 3 of 3") and lineage["n_images"] == 1
    assert lineage["pixels"] == 64 * 56  # one frame, not the stack
    # correct frames 1 and 2 (frame 3 is shown): fine-tuning learns from exactly those
    w.model.value = str(tiny_model)
    yy, xx = np.mgrid[:64, :56]
    data = np.array(labels.data)
    for i in (0, 1):
        data[i] = ((yy - 32) ** 2 + (xx - 20 - 10 * i) ** 2 < 15**2).astype(np.uint8)
    labels.data = data
    job = w.fine_tune()
    assert job.state == "done", job.error
    lineage = json.loads(job.result[1].with_suffix(".json").read_text())["lineage"]
    assert lineage["data"].endswith("frames 1, 2 of 3") and lineage["n_images"] == 2


@pytest.fixture
def whole_image_model():
    """A tiny U-Net that calls every pixel particle (a zero head with a foreground bias), with
    known training particle sizes: the size cue then sees one particle as large as the image."""
    import torch

    from napari_interfaces.segment.models import save_model, user_models_dir
    from napari_interfaces.segment.unet import UNet, UNetConfig

    net = UNet(UNetConfig(width=4))
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.copy_(torch.tensor([0.0, 3.0]))
    meta = {"pixel_size": 0.2, "classes": ["background", "particle"], "description": "whole"}
    meta["particle_diameter_range"] = [13.4, 35.4]
    return save_model(net, user_models_dir() / "unet_whole.pt", meta)


def test_segment_dock_says_which_cue_estimated_the_pixel_size(
    make_napari_viewer, whole_image_model
):
    """The dock's line names the cue that decided the estimate and how sure, as the result's
    estimate says; the result layers carry the estimate."""
    from napari_interfaces._widgets.segment import SegmentWidget
    from napari_interfaces.segment.scale import AU_111, FCC_FAMILIES

    n = 128
    d_px = 2 * np.sqrt(n * n / np.pi)  # the whole image as one particle: 144 px across
    yy, xx = np.mgrid[:n, :n]
    rng = np.random.default_rng(0)
    # {220} fringes at 0.218 Å/px: read as {111} (0.356 Å/px) the particle would be 51 Å,
    # outside 13.4-35.4 Å; as {220} it is 31 Å
    ps, r220 = 0.218, dict((f, r) for f, r, _ in FCC_FAMILIES)["220"]
    fringes = rng.normal(0, 1, (n, n)) + np.cos(
        2 * np.pi * (0.6 * xx + 0.8 * yy) * ps / (AU_111 * r220)
    )
    viewer = make_napari_viewer(show=True)
    viewer.add_image(fringes.astype(np.float32), name="fringes")
    viewer.add_image(rng.normal(0, 1, (n, n)).astype(np.float32), name="amorphous")
    w = SegmentWidget(viewer, sync=True)
    w.model.value = str(whole_image_model)
    w.image.value = viewer.layers["fringes"]
    assert w.pixel_size.value == 0  # unknown: estimated
    assert w.run().state == "done", w.job.error
    est = w.result.estimate
    assert w.result.pixel_size_source == "estimated" and est.cue == "fringes + particle size"
    assert est.family == "220" and w.result.pixel_size == pytest.approx(ps, rel=0.03)
    text = w.used_label.value
    assert f"pixel size used: {w.result.pixel_size:.4g} Å (estimated: fringes as {{220}}, " in text
    assert f"chosen by particle size, p = {est.probability:.2f})" in text
    assert "\n" not in text and "fringes as {220}" in w.status.value
    md = viewer.layers["labels [fringes]"].metadata
    assert md["pixel_size_estimate"]["cue"] == "fringes + particle size"
    assert md["pixel_size_estimate"]["family"] == "220"
    assert md["pixel_size_estimate"]["probability"] == round(est.probability, 3)
    # no fringes: the particle size alone, rough, and said so
    w.image.value = viewer.layers["amorphous"]
    assert w.run().state == "done", w.job.error
    est = w.result.estimate
    assert est.cue == "particle size"
    assert w.result.pixel_size == pytest.approx(np.sqrt(13.4 * 35.4) / d_px, rel=0.01)
    text = w.used_label.value
    assert "estimated: particle size alone, no usable fringes (rough), p = 0.29" in text
    assert "lattice fringes" not in text
    md = viewer.layers["particles [amorphous]"].metadata
    assert md["pixel_size_estimate"]["cue"] == "particle size"
    # applying it to the image keeps the estimate with it
    w.apply_pixel_size()
    assert viewer.layers["amorphous"].metadata["pixel_size_estimate"]["cue"] == "particle size"


def test_database_dock_generates_and_browses(make_napari_viewer, tmp_path):
    from napari_interfaces._widgets.database import DatabaseWidget, read_sample_job

    viewer = make_napari_viewer(show=True)
    w = DatabaseWidget(viewer, sync=True)
    assert "tiny_synthetic" in w.editor.value
    w.params["out"].value = tmp_path / "gui.zarr"
    w.params["n"].value = 3
    job = w.run()
    assert job.state == "done", job.error
    assert job.result.computed == 3
    assert viewer.layers["image [database]"].data.shape == (64, 64)
    w._show(read_sample_job(str(tmp_path / "gui.zarr"), 2))
    assert viewer.layers["labels [database]"].data.max() == 1
    assert "sample 2" in w.meta.value
    # issue 21 #7: the drawn parameters as readable fields, not raw JSON
    fields = dict(w.sample_fields())
    assert fields and not any("{" in k or "{" in v for k, v in fields.items())
    assert "imaging › dose (e/Å²)" in fields
    assert float(fields["imaging › dose (e/Å²)"]) > 0
    # a broken spec is reported, not raised
    w.editor.value = "parameters: {r: {uniform: [3, 1]}}"
    job = w.run()
    assert job.state == "error" and "error" in w.status.value


def test_png_from_napari_reader_segmented_results_keep_image_units(
    make_napari_viewer, tiny_model, tmp_path
):
    """Issue 21 #1: an uncalibrated PNG (napari's own reader) segmented from the plugin dock:
    labels, particles and uncertainty have exactly the image's scale and units (pixels), the
    dock and the metadata say which pixel size the engine assumed, and Apply calibrates all."""
    import warnings

    from PIL import Image as PILImage

    rng = np.random.default_rng(1)
    img = (rng.random((96, 80)) * 255).astype(np.uint8)
    path = tmp_path / "uncalibrated.png"
    PILImage.fromarray(img).save(path)
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open(path, plugin="napari")  # napari's own reader: pixels
    assert layer.data.shape == (96, 80)
    assert all(str(u) == "pixel" for u in layer.units)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "Segment micrograph")
    w.sync = True
    assert w.image.value is layer and w.pixel_size.value == 0  # unknown
    w.model.value = str(tiny_model)
    w.uncertainty.value = True
    w.estimate.value = False  # the model's own pixel size is assumed
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # napari: "Inconsistent units across layers"
        job = w.run()
        assert job.state == "done", job.error
    names = [f"{k} [{layer.name}]" for k in ("labels", "particles", "uncertainty")]
    for name in names:
        res = viewer.layers[name]
        assert tuple(res.scale) == tuple(layer.scale) == (1.0, 1.0), name
        assert tuple(map(str, res.units)) == tuple(map(str, layer.units)), name
        assert tuple(res.translate) == tuple(layer.translate)
        assert res.data.shape[-2:] == (96, 80)
        assert res.metadata["pixel_size_source"] == "assumed"
        assert res.metadata["pixel_size_used"] == pytest.approx(0.5)
        assert "pixel_size" not in res.metadata  # no physical size claimed
    assert "no physical pixel size" in w.used_label.value
    assert not w.apply_button.native.isHidden()  # offered (the dock may be a hidden tab)
    # the dock offers the assumed/estimated size: applying it calibrates image and results
    w.apply_pixel_size()
    for lay in [layer] + [viewer.layers[n] for n in names]:
        assert tuple(lay.scale) == pytest.approx((0.5, 0.5))
        assert tuple(map(str, lay.units)) == ("angstrom", "angstrom")
    assert w.pixel_size.value == pytest.approx(0.5)
    assert viewer.canvas.overlays.scale_bar.visible


def test_segment_does_not_default_to_an_apt_volume(make_napari_viewer):
    """Issue 21 #7: with APT data open, Segment lists 2D micrographs only."""
    from napari_interfaces._hooks.apt_data import sample_layered

    viewer = make_napari_viewer()
    for data, kw, kind in sample_layered():
        getattr(viewer, f"add_{kind}")(data, **kw)
    _, w = viewer.window.add_plugin_dock_widget("napari-interfaces", "Segment micrograph")
    assert w.image.value is None and not w.image.choices
    mic = viewer.add_image(np.zeros((32, 32), np.float32), name="mic")
    assert w.image.value is mic and list(w.image.choices) == [mic]


def test_segment_dock_form_is_the_spec(make_napari_viewer):
    """Issue 20: the dock's fields come from SegmentParams / FinetuneParams: same bounds as the
    CLI, sentinel words, a bad value marked on its field and nothing run."""
    from napari_interfaces._widgets.segment import SegmentWidget
    from napari_interfaces.core.errors import ParameterError
    from napari_interfaces.segment.inference import SegmentParams

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((64, 64), np.float32), name="mic")
    w = SegmentWidget(viewer, sync=True)
    tile, overlap = w.form["tile"], w.form["overlap"]
    p = SegmentParams.param_of("tile")
    assert (tile.min, tile.max, tile.value) == (p.lo, p.hi, p.default)
    assert overlap.native.lineEdit().text() == "auto" and w.form.value("overlap") is None
    assert "nm²" in w.form["min_particle_area"].label and "[32, 16384]" in tile.tooltip
    assert w.epochs.value == 5 and w.freeze.value is True  # FinetuneParams' defaults
    assert w.form.spec(pixel_size=None) == SegmentParams()
    # a bad value (split depth 0 Å; the CLI's --split-depth 0 gives the same bound) is marked
    w.form["split_depth"].value = 0.0
    with pytest.raises(ParameterError, match="^split_depth: must be in \\(0, 1000\\]"):
        w.run()
    assert "e05050" in w.form["split_depth"].native.styleSheet()
    assert "must be in (0, 1000]" in w.form["split_depth"].tooltip
    assert w.job is None and "labels [mic]" not in viewer.layers
    # from the button: the message in the status line, one line
    w.segment_button.native.click()
    assert "split_depth: must be in (0, 1000], got 0" in w.status.value
    w.form["split_depth"].value = 2.0  # a change clears the mark
    assert not w.form["split_depth"].native.styleSheet()
    # the particle sizes for the pixel-size estimate (CLI --particle-diameter LO HI): empty =
    # auto; "LO, HI" reaches the spec; one value or LO >= HI is marked on the field
    diam = w.form["particle_diameter"]
    assert diam.native.placeholderText() == "auto" and "Å" in diam.label
    assert w.form.spec(pixel_size=None).particle_diameter is None
    diam.value = "20, 45"
    assert w.form.spec(pixel_size=None).particle_diameter == (20.0, 45.0)
    for bad in ("30", "45, 20"):
        diam.value = bad
        with pytest.raises(ParameterError, match="^particle_diameter: expected two diameters"):
            w.form.spec(pixel_size=None)
        assert "e05050" in diam.native.styleSheet()
