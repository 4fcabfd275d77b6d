"""Few-shot fine-tuning from a folder of corrected frames (issue 23), end to end via the CLI.

Also the realism knobs of the simulation recipe (detector blur/drift/gradient, label
margin) and the real-frame benchmark's instance matching.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL = pytest.importorskip("PIL")

from napari_interfaces import cli  # noqa: E402

torch.set_num_threads(1)


def _frames(tmp_path, n=3, size=96, seed=0):
    """Dark discs on a noisy bright film, PNG frames and same-named 0/255 masks."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    img_dir, lab_dir = tmp_path / "images", tmp_path / "labels"
    img_dir.mkdir()
    lab_dir.mkdir()
    yy, xx = np.mgrid[:size, :size]
    truth = []
    for i in range(n):
        mask = np.zeros((size, size), bool)
        for _ in range(3):
            cy, cx, r = rng.uniform(15, size - 15), rng.uniform(15, size - 15), rng.uniform(8, 13)
            mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        img = 170 - 90 * mask + rng.normal(0, 12, mask.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(img_dir / f"f{i}.png")
        Image.fromarray((mask * 255).astype(np.uint8)).save(lab_dir / f"f{i}.png")
        truth.append((img.astype(np.float32), mask))
    return img_dir, lab_dir, truth


def _cli(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_finetune_from_folder_end_to_end(tmp_path, capsys):
    from napari_interfaces.segment.inference import segment_image
    from napari_interfaces.segment.metrics import scores
    from napari_interfaces.segment.models import load_model

    img_dir, lab_dir, truth = _frames(tmp_path, size=160)
    out = tmp_path / "ft.pt"
    argv = ["train", "--init", "default", "--images", img_dir, "--labels", lab_dir]
    argv += ["--out", out, "--epochs", 2, "--crop", 64, "--quiet", "--threads", 1]
    rc, stdout, err = _cli(argv, capsys)
    assert rc == 0, err
    assert "fine-tuned" in stdout and "3 frame(s)" in stdout and "held-out F1" in stdout
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["lineage"]["n_images"] == 3 and meta["lineage"]["parent_sha256"]
    # PNG frames carry no pixel size and show no fringes: each frame's is estimated as
    # segment_image estimates it, from the particle size alone (the shipped model's
    # training sizes, 13.4-35.4 Å: the typical particle put at their middle), and the
    # lineage records per frame which cue decided and how sure
    from napari_interfaces.segment.scale import DEFAULT_DIAMETER_RANGE, typical_diameter

    used = meta["lineage"]["pixel_sizes"]
    assert [u["image"] for u in used] == ["f0.png", "f1.png", "f2.png"]
    for u, (_, m) in zip(used, truth, strict=True):
        assert u["source"] == "estimated" and u["cue"] == "particle size"
        assert 0 < u["probability"] < 0.5 and u["estimate"].startswith("particle size alone")
        truth_ps = np.sqrt(np.prod(DEFAULT_DIAMETER_RANGE)) / typical_diameter(m)
        assert u["pixel_size"] == pytest.approx(truth_ps, rel=0.15)
    assert "pixel size estimated from particle size" in stdout
    hist = meta["training"]["history"]
    assert 1 <= len(hist) <= 2 and meta["training"]["n_validation"] == 3
    # early stopping keeps the best validation epoch
    assert meta["training"]["best"]["f1"] == pytest.approx(max(h["f1"] for h in hist))
    # the new model segments the frames (dark discs) it was tuned on
    model = load_model(out)
    f1 = [
        scores(segment_image(img, model, tile=160).labels, m.astype(np.uint8))["f1"]
        for img, m in truth
    ]
    assert np.mean(f1) > 0.6, f1
    # never overwritten without --overwrite
    rc, _, err = _cli(argv, capsys)
    assert rc == 2 and "--overwrite" in err
    # a given pixel size is used as it is: nothing estimated
    rc, stdout, err = _cli([*argv, "--overwrite", "--pixel-size", 0.2, "--epochs", 1], capsys)
    assert rc == 0, err
    used = json.loads(out.with_suffix(".json").read_text())["lineage"]["pixel_sizes"]
    assert all(u["source"] == "given" and u["pixel_size"] == 0.2 and "cue" not in u for u in used)
    assert "(pixel size given)" in stdout


def test_cli_finetune_folder_errors_are_one_line(tmp_path, capsys):
    img_dir, lab_dir, _ = _frames(tmp_path, n=2, size=64)
    (lab_dir / "f1.png").unlink()
    out = tmp_path / "ft.pt"
    base = ["train", "--init", "default", "--out", out, "--quiet"]
    rc, _, err = _cli([*base, "--images", img_dir, "--labels", lab_dir], capsys)
    assert rc == 2 and "f1.png" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _cli([*base, "--images", img_dir], capsys)
    assert rc == 2 and "--labels" in err
    rc, _, err = _cli(["train", "--out", out, "--images", img_dir, "--labels", lab_dir], capsys)
    assert rc == 2 and "--init" in err
    assert not out.exists()


def test_detector_blur_drift_gradient_physics():
    from napari_interfaces.simulate.detector import apply_detector, motion_blur

    rng = np.random.default_rng(0)
    img = np.ones((64, 64), np.float32)
    img[32, 32] = 2.0  # a point on vacuum
    # defaults: exactly the plain detector (same random stream, same output)
    a = apply_detector(img, (0.5, 0.5), 1000, None, 0, np.random.default_rng(1))
    b = apply_detector(img, (0.5, 0.5), 1000, None, 0, np.random.default_rng(1), 0, 0, 0)
    np.testing.assert_array_equal(a, b)
    # Gaussian blur of rms 1 Å = 2 px: the point's second moment is 2 px along each axis
    g = motion_blur(img, (0.5, 0.5), blur=1.0) - 1.0
    yy, xx = np.mgrid[:64, :64]
    assert np.sqrt((g * (xx - 32) ** 2).sum() / g.sum()) == pytest.approx(2.0, rel=0.02)
    assert g.sum() == pytest.approx(1.0, rel=1e-4)  # dose conserved
    # linear drift of 4 Å = 8 px along x: a box of 8 px (variance 8²/12), none along y
    d = motion_blur(img, (0.5, 0.5), drift=4.0, angle=0.0) - 1.0
    assert (d * (xx - 32) ** 2).sum() / d.sum() == pytest.approx(64 / 12, rel=0.1)
    assert (d * (yy - 32) ** 2).sum() / d.sum() < 0.05
    # a gradient keeps the mean dose
    out = apply_detector(np.ones((64, 64), np.float32), (0.5, 0.5), None, None, 0, rng, 0, 0, 0.2)
    assert out.mean() == pytest.approx(1.0, abs=1e-3) and np.ptp(out) == pytest.approx(0.2, 0.05)


def test_label_margin_moves_the_boundary_inwards():
    from napari_interfaces.simulate.labels import shrink_mask

    yy, xx = np.mgrid[:200, :200]
    disc = ((yy - 100) ** 2 + (xx - 100) ** 2 < 50**2).astype(np.uint8)  # r = 10 Å at 0.2 Å/px
    for margin in (0.6, 1.2):
        r = np.sqrt(shrink_mask(disc, (0.2, 0.2), margin).sum() / np.pi) * 0.2
        assert r == pytest.approx(10 - margin, abs=0.15)
    r = np.sqrt(shrink_mask(disc, (0.2, 0.2), -1.0).sum() / np.pi) * 0.2
    assert r == pytest.approx(11.0, abs=0.15)
    np.testing.assert_array_equal(shrink_mask(disc, (0.2, 0.2), 0.0), disc)


def test_bench_instance_matching():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_segment_real.py"
    spec = importlib.util.spec_from_file_location("bench_segment_real", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    truth = np.zeros((60, 60), bool)
    truth[5:25, 5:25] = truth[35:55, 35:55] = True
    pred = np.zeros_like(truth)
    pred[6:26, 6:26] = True  # IoU 0.81: found
    pred[35:45, 35:45] = True  # IoU 0.25: missed (and a false prediction)
    pred[0:2, 58:60] = True  # a 4 px speck: ignored
    tp, nt, npred, matched, _ = mod.instance_match(pred, truth)
    assert (tp, nt, npred, matched) == (1, 2, 2, {1})
    s = mod.score_frames([pred], [("x", None, truth)])
    assert s["inst_f1"] == pytest.approx(0.5) and s["found"] == 1


@pytest.mark.parametrize(
    ("name", "margin"),
    [("hrtem_realistic", 1.2), ("hrtem_transfer", 1.2), ("hrtem_transfer_margin06", 0.6)],
)
def test_realistic_recipes_draw_valid_parameters(name, margin):
    from napari_interfaces.simulate.database import _flatten_groups
    from napari_interfaces.simulate.spec import load_spec
    from napari_interfaces.simulate.workflow import sample_parameters

    spec = load_spec(name)
    known = {k for v in sample_parameters().values() for k in v}
    rng = np.random.default_rng(0)
    for _ in range(20):
        flat = _flatten_groups(spec.draw(rng))
        assert set(flat) <= known
        assert flat["label_margin"] == margin and 0 <= flat["gradient"] <= 0.2
        assert flat["aperture_mrad"] is None or 12 <= flat["aperture_mrad"] <= 40


def test_simulated_label_margin_shrinks_the_particle():
    from napari_interfaces.simulate.workflow import simulate_sample

    kw = dict(extent=(32, 32), substrate_thickness=0, particle_diameter=16, sampling=0.2,
              dose=None, device="numpy")  # fmt: skip
    a = simulate_sample(3, **kw)
    b = simulate_sample(3, label_margin=1.0, **kw)
    np.testing.assert_array_equal(a.image, b.image)  # only the labels change
    ra, rb = (np.sqrt(s.labels.sum() / np.pi) * 0.2 for s in (a, b))
    assert ra - rb == pytest.approx(1.0, abs=0.2)
    assert b.params["label_margin"] == 1.0


def test_bench_scores_the_engines_particle_instances():
    """Two particles merged by a thin neck in the prediction: one component, two instances."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_segment_real.py"
    spec = importlib.util.spec_from_file_location("bench_segment_real", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yy, xx = np.mgrid[:80, :120]
    a = (yy - 40) ** 2 + (xx - 35) ** 2 < 20**2
    b = (yy - 40) ** 2 + (xx - 83) ** 2 < 20**2
    truth = a | b  # two discs 8 px apart
    pred = truth | ((np.abs(yy - 40) <= 2) & (xx > 50) & (xx < 70))  # joined by a neck
    inst = mod.particle_instances(pred, 0.4)  # Å/px: 16 Å discs, a 2 Å neck
    assert inst.max() == 2
    s = mod.score_frames([pred], [("x", None, truth)], [inst])
    assert (s["found"], s["n_true"], s["n_pred"], s["inst_f1"]) == (2, 2, 2, 1.0)
    assert (s["cc_found"], s["cc_n_pred"]) == (0, 1) and s["cc_inst_f1"] == 0.0
