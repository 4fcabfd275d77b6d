"""Pixel-size estimate of an image without one: fringes + particle size (issue 23 item 2)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_interfaces.segment.scale import (
    AU_111,
    DEFAULT_DIAMETER_RANGE,
    FCC_FAMILIES,
    choose_fringe_family,
    estimate_pixel_size,
    typical_diameter,
)

RATIO = {name: r for name, r, _ in FCC_FAMILIES}


def _particle_with_fringes(ps: float, family: str, diameter: float, n: int = 256, seed: int = 0):
    """Noise + a disc ``diameter`` Å across carrying the fringes of ``family`` at ``ps`` Å/px."""
    yy, xx = np.mgrid[:n, :n]
    r_px = diameter / ps / 2
    disc = (xx - n / 2) ** 2 + (yy - n / 2) ** 2 < r_px**2
    d = AU_111 * RATIO[family]
    img = np.random.default_rng(seed).normal(0, 1, (n, n))
    img += 0.8 * np.cos(2 * np.pi * (0.6 * xx + 0.8 * yy) * ps / d) * disc
    return img, disc


def test_typical_diameter_ignores_specks():
    yy, xx = np.mgrid[:200, :200]
    mask = ((xx - 60) ** 2 + (yy - 60) ** 2 < 20**2) | ((xx - 140) ** 2 + (yy - 140) ** 2 < 30**2)
    mask[5:7, 190:192] = True  # a 4 px speck
    assert typical_diameter(mask) == pytest.approx(50, rel=0.03)  # median of 40 and 60
    assert typical_diameter(np.zeros((10, 10), bool)) is None


def test_particle_size_resolves_which_fringes():
    # {220} fringes of a 30 Å particle at 0.2 Å/px: read as {111} the pixel
    # size is x1.63 too large (the particle would be 49 Å, outside the
    # training sizes); the particle size picks {220}
    img, disc = _particle_with_fringes(0.2, "220", 30.0)
    fringe = estimate_pixel_size(img)
    assert fringe.cue == "fringes" and fringe.probability is None
    assert fringe.pixel_size == pytest.approx(0.2 / RATIO["220"], rel=0.03)  # the old miss
    est = choose_fringe_family(fringe, typical_diameter(disc))
    assert est.pixel_size == pytest.approx(0.2, rel=0.03)
    assert est.cue == "fringes + particle size"
    assert est.fringe_pixel_size == pytest.approx(fringe.pixel_size)
    assert est.spacing == pytest.approx(AU_111 * RATIO["220"])
    assert [c.family for c in est.candidates] == ["111", "200", "220", "311"]
    assert sum(c.probability for c in est.candidates) == pytest.approx(1.0)
    best = max(est.candidates, key=lambda c: c.probability)
    assert best.family == "220" and est.probability == pytest.approx(best.probability)
    assert est.probability > 0.5 and "{220}" in est.note
    d = est.to_dict()
    assert d["cue"] == "fringes + particle size" and len(d["candidates"]) == 4
    # {111} fringes of a 30 Å particle stay {111}: the size agrees
    img, disc = _particle_with_fringes(0.2, "111", 30.0, seed=1)
    est = choose_fringe_family(estimate_pixel_size(img), typical_diameter(disc))
    assert est.pixel_size == pytest.approx(0.2, rel=0.03) and est.candidates[0].family == "111"
    # a size the training sizes cannot tell apart from its neighbours is not "sure"
    assert est.probability < 0.7
    # no particles: the fringes alone
    none = choose_fringe_family(fringe, None)
    assert none.pixel_size == fringe.pixel_size and none.cue == "fringes"
    assert "no particles" in none.note


def _bright_net():
    """A stand-in network: foreground where the (normalized) image is locally bright."""
    import torch

    class Bright(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            s = torch.nn.functional.avg_pool2d(x, 9, 1, 4, count_include_pad=False)
            return torch.cat([-s, s], 1)

    return Bright().eval()


def test_segment_image_reports_cue_candidates_and_probability():
    pytest.importorskip("torch")
    from napari_interfaces.segment.inference import particle_diameter_prior, segment_image
    from napari_interfaces.segment.models import LoadedModel

    meta = {"architecture": {"n_classes": 2}, "pixel_size": 0.2}
    img, disc = _particle_with_fringes(0.2, "220", 30.0)
    img = img + 2.0 * disc  # the particle is brighter: the stand-in network finds it
    kw = dict(tile=128, precision="float32", particles=False)
    # a model without known training particle sizes: the fringes alone (x1.63 off)
    plain = LoadedModel(_bright_net(), dict(meta))
    assert particle_diameter_prior(plain) is None
    r = segment_image(img, plain, **kw)
    assert r.pixel_size_source == "estimated" and r.estimate.cue == "fringes"
    assert r.pixel_size == pytest.approx(0.2 / RATIO["220"], rel=0.03)
    # with them (the shipped default's lineage names its recipe): one extra
    # pass segments the particle, its size picks {220}; cue, candidates and
    # how sure are reported
    sized = LoadedModel(_bright_net(), {**meta, "lineage": {"data": "spec hrtem_default"}})
    assert particle_diameter_prior(sized) == DEFAULT_DIAMETER_RANGE
    r = segment_image(img, sized, **kw)
    est = r.estimate
    assert r.pixel_size_source == "estimated" and est.cue == "fringes + particle size"
    assert r.pixel_size == pytest.approx(0.2, rel=0.03)
    assert r.scale == pytest.approx(1.0, rel=0.03)
    assert est.particle_diameter_px == pytest.approx(150, rel=0.05)
    assert "pixel_size_estimate" in r.seconds
    s = r.summary()["pixel_size_estimate"]
    assert s["cue"] == "fringes + particle size" and s["probability"] > 0.5
    assert [c["family"] for c in s["candidates"]] == ["111", "200", "220", "311"]
    # the cue can be switched off; a given pixel size is not estimated
    r = segment_image(img, sized, pixel_size_cue="fringes", **kw)
    assert r.estimate.cue == "fringes" and r.pixel_size == pytest.approx(est.fringe_pixel_size)
    r = segment_image(img, sized, pixel_size=0.3, **kw)
    assert r.pixel_size_source == "given" and r.estimate is None
    # the user's expected sizes give the cue to a model without known training sizes
    r = segment_image(img, plain, particle_diameter=(20.0, 45.0), **kw)
    assert r.estimate.cue == "fringes + particle size"
    assert r.pixel_size == pytest.approx(0.2, rel=0.03)
    # ... and override a model's: sizes three times larger read the fringes as {111}
    r = segment_image(img, sized, particle_diameter=(60.0, 120.0), **kw)
    assert r.pixel_size == pytest.approx(est.fringe_pixel_size)
    assert r.estimate.cue == "fringes + particle size"


@pytest.mark.parametrize("bad", [(40.0, 20.0), (30.0, 30.0), (-1.0, 5.0)])
def test_particle_diameter_must_be_a_range(bad):
    from napari_interfaces.core.errors import ParameterError
    from napari_interfaces.segment.inference import SegmentParams

    with pytest.raises(ParameterError, match="particle_diameter"):
        SegmentParams.of(None, particle_diameter=bad)


def test_cli_particle_diameter_flag(capsys):
    from napari_interfaces.cli import main

    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    assert "--particle-diameter LO HI" in " ".join(capsys.readouterr().out.split())


def test_no_fringes_rough_estimate_from_particle_size():
    pytest.importorskip("torch")
    from napari_interfaces.segment.inference import segment_image
    from napari_interfaces.segment.models import LoadedModel
    from napari_interfaces.segment.scale import estimate_from_particle_size

    lo, hi = DEFAULT_DIAMETER_RANGE
    est = estimate_from_particle_size(100.0)
    assert est.pixel_size == pytest.approx(np.sqrt(lo * hi) / 100) and est.cue == "particle size"
    assert 0 < est.probability < 0.5 and estimate_from_particle_size(None) is None
    # an amorphous 150 px particle (no fringes): the size alone, not the model's own
    yy, xx = np.mgrid[:256, :256]
    disc = (xx - 128) ** 2 + (yy - 128) ** 2 < 75**2
    img = np.random.default_rng(3).normal(0, 1, (256, 256)) + 2.0 * disc
    meta = {"architecture": {"n_classes": 2}, "pixel_size": 0.2}
    model = LoadedModel(_bright_net(), {**meta, "lineage": {"data": "spec hrtem_default"}})
    kw = dict(tile=128, precision="float32", particles=False)
    r = segment_image(img, model, **kw)
    assert r.pixel_size_source == "estimated" and r.estimate.cue == "particle size"
    assert r.pixel_size == pytest.approx(np.sqrt(lo * hi) / 150, rel=0.05)
    assert "no fringes" in r.estimate.note or "too weak" in r.estimate.note
    # fringes only: the model's own is assumed, as before
    r = segment_image(img, model, pixel_size_cue="fringes", **kw)
    assert r.pixel_size_source == "assumed" and r.pixel_size == 0.2


def test_image_pixel_size_is_the_rule_segment_image_uses():
    """One engine rule: image_pixel_size (fine-tuning) gives what segment_image uses, and the
    estimate describes itself in one line (the cue that decided, how sure)."""
    pytest.importorskip("torch")
    from napari_interfaces.segment.inference import image_pixel_size, segment_image
    from napari_interfaces.segment.models import LoadedModel

    meta = {"architecture": {"n_classes": 2}, "pixel_size": 0.2}
    sized = LoadedModel(_bright_net(), {**meta, "lineage": {"data": "spec hrtem_default"}})
    kw = dict(tile=128, precision="float32")
    # {220} fringes: chosen by the particle size
    img, disc = _particle_with_fringes(0.2, "220", 30.0)
    img = img + 2.0 * disc
    ps, source, est = image_pixel_size(img, sized, **kw)
    r = segment_image(img, sized, particles=False, **kw)
    assert (
        (ps, source)
        == (r.pixel_size, r.pixel_size_source)
        == (pytest.approx(0.2, rel=0.03), "estimated")
    )
    assert est.cue == r.estimate.cue == "fringes + particle size" and est.family == "220"
    assert (
        est.describe() == f"fringes as {{220}}, chosen by particle size, p = {est.probability:.2f}"
    )
    assert est.to_dict()["family"] == "220"
    # no fringes: the particle size alone (rough)
    yy, xx = np.mgrid[:256, :256]
    disc = (xx - 128) ** 2 + (yy - 128) ** 2 < 75**2
    img = np.random.default_rng(3).normal(0, 1, (256, 256)) + 2.0 * disc
    ps, source, est = image_pixel_size(img, sized, **kw)
    r = segment_image(img, sized, particles=False, **kw)
    assert (ps, source, est.cue) == (r.pixel_size, "estimated", "particle size")
    assert est.family is None and est.describe().startswith("particle size alone")
    # the fringes alone (the cue switched off, or a model without known particle sizes)
    ps, source, est = image_pixel_size(img, sized, pixel_size_cue="fringes", **kw)
    assert (ps, source) == (0.2, "assumed") and est.describe().startswith("no estimate")
    img, disc = _particle_with_fringes(0.2, "111", 30.0, seed=1)
    plain = LoadedModel(_bright_net(), dict(meta))
    ps, source, est = image_pixel_size(img, plain, **kw)
    assert source == "estimated" and est.cue == "fringes" and est.family == "111"
    assert est.describe() == f"fringes as {{111}}, confidence {est.confidence:.0f}"
    # a given pixel size is not estimated
    assert image_pixel_size(img, sized, pixel_size=0.3, **kw) == (0.3, "given", None)
