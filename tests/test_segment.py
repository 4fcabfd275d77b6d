"""U-Net segmentation: network, augmentation, metrics, loss, training, models, inference, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from napari_interfaces.segment.augment import dihedral, dihedral_inverse, random_dihedral  # noqa: E402
from napari_interfaces.segment.inference import (  # noqa: E402
    blend_window,
    evaluate_store,
    rescale_factor,
    segment_image,
    tile_starts,
)
from napari_interfaces.segment.losses import CEDiceLoss, soft_dice  # noqa: E402
from napari_interfaces.segment.metrics import ConfusionCounter, scores  # noqa: E402
from napari_interfaces.segment.models import (  # noqa: E402
    LoadedModel,
    list_models,
    load_model,
    model_info,
    next_version_path,
    save_model,
)
from napari_interfaces.segment.train import TrainConfig, normalize_image, train  # noqa: E402
from napari_interfaces.segment.unet import UNet, UNetConfig, count_parameters  # noqa: E402
from napari_interfaces.simulate.database import generate_database  # noqa: E402

torch.set_num_threads(1)

TINY = {
    "name": "seg",
    "seed": 7,
    "sampler": "synthetic",
    "output": {"pixel_size": 0.5, "crop": 64},
    "parameters": {
        "particle": {"radius": {"uniform": [6, 9]}, "count": 1, "contrast": 0.5},
        "imaging": {"dose": 2000, "blur": 0.5},
    },
}


@pytest.fixture(scope="module")
def tiny_db(tmp_path_factory):
    out = tmp_path_factory.mktemp("segdb") / "db.zarr"
    generate_database(TINY, out, n=12, scheduler="inline")
    return out


def test_unet_shapes_and_size():
    net = UNet(UNetConfig(width=8, n_classes=3)).eval()
    with torch.no_grad():
        assert net(torch.zeros(2, 1, 45, 77)).shape == (2, 3, 45, 77)
        assert net(torch.zeros(1, 1, 64, 64)).shape == (1, 3, 64, 64)
    assert net.multiple == 32
    assert count_parameters(UNet(UNetConfig(width=8))) == 205222
    assert UNetConfig.from_dict(UNetConfig(width=8).to_dict()) == UNetConfig(width=8)
    with pytest.raises(ValueError):
        UNetConfig(n_classes=1)


def test_dihedral_group():
    a = np.arange(12).reshape(3, 4)
    outs = {dihedral(a, k).tobytes() + bytes(dihedral(a, k).shape) for k in range(8)}
    assert len(outs) == 8  # all distinct
    t = torch.arange(12).reshape(1, 3, 4)
    for k in range(8):
        assert np.array_equal(dihedral(t, k).numpy()[0], dihedral(a, k))
        assert np.array_equal(dihedral_inverse(dihedral(a, k), k), a)
    x, y = random_dihedral(np.random.default_rng(1), a, a * 10)
    assert np.array_equal(y, x * 10)


def test_metrics_pinned():
    truth = np.array([[0, 1, 1, 1], [0, 0, 1, 0]])
    pred = np.array([[0, 1, 1, 0], [1, 0, 1, 0]])
    s = scores(pred, truth)
    assert s["iou"] == pytest.approx(3 / 5)  # TP 3, FP 1, FN 1
    assert s["f1"] == pytest.approx(6 / 8)
    assert scores(np.zeros((2, 2)), np.zeros((2, 2)))["f1"] == 1.0
    c = ConfusionCounter(3)
    c.update(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]))
    assert c.scores()["f1_per_class"] == pytest.approx([1.0, 2 / 3, 2 / 3])


def test_loss_values():
    target = torch.tensor([[[0, 1], [1, 1]]])
    perfect = torch.stack([1 - target, target], 1).float() * 20 - 10
    loss = CEDiceLoss()
    assert float(loss(perfect, target)) < 1e-3
    flat = torch.zeros(1, 2, 2, 2)
    # CE = ln 2; Dice of class 1 = (2*1.5 + 1) / (2 + 3 + 1) = 2/3
    assert float(loss(flat, target)) == pytest.approx(np.log(2) + 1 / 3, rel=1e-5)
    assert soft_dice(flat, target, include_background=True).shape == (2,)


def test_normalization():
    img = np.random.default_rng(0).normal(5, 2, (64, 64))
    n = normalize_image(img)
    assert abs(n.mean()) < 1e-5 and n.std() == pytest.approx(1, rel=1e-3)
    assert normalize_image(np.ones((8, 8))).max() == 0


def test_tiling_helpers():
    assert tile_starts(1000, 512, 64) == [0, 448, 488]
    assert tile_starts(300, 512, 64) == [0]
    w = blend_window(64, 16)
    assert w.shape == (64, 64) and w.min() > 0 and w[32, 32] == 1
    assert rescale_factor(0.1, 0.2) == pytest.approx(0.5)
    assert rescale_factor(None, 0.2) == 1.0


def test_tiled_inference_matches_whole_image():
    torch.manual_seed(0)
    net = UNet(UNetConfig(width=4)).eval()
    model = LoadedModel(net, {"architecture": net.config.to_dict(), "pixel_size": 0.5})
    img = np.random.default_rng(1).random((150, 170)).astype(np.float32)
    r_whole = segment_image(img, model, tile=192, precision="float32", estimate_pixel_size=False)
    r_tiled = segment_image(
        img, model, tile=64, overlap=32, precision="float32", estimate_pixel_size=False
    )
    whole, p_whole = r_whole.labels, r_whole.probabilities
    tiled, p_tiled = r_tiled.labels, r_tiled.probabilities
    # no pixel size, none estimated: the model's is assumed and said so
    assert r_whole.pixel_size == 0.5 and r_whole.pixel_size_source == "assumed"
    assert whole.shape == tiled.shape == (150, 170)
    assert np.allclose(p_whole.sum(0), 1, atol=1e-5)
    # blending keeps the tiles consistent with one pass over the whole image
    assert np.mean(np.abs(p_whole - p_tiled)) < 0.02
    # pixel-size aware: an image at half the model's pixel size comes back at its own size
    res = segment_image(img, model, pixel_size=0.25, tile=64, precision="float32")
    assert res.labels.shape == (150, 170) and res.scale == pytest.approx(0.5)
    assert res.pixel_size_source == "given" and res.grid.spacing == (0.25, 0.25)


def test_train_save_load_evaluate(tiny_db, tmp_path):
    out = tmp_path / "m.pt"
    cfg = TrainConfig(
        epochs=3,
        batch_size=4,
        width=4,
        crop=None,
        val_fraction=0.25,
        patience=5,
        threads=1,
        lr=5e-3,
    )
    r = train(tiny_db, out, cfg)
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert not out.with_name("m.pt.ckpt").exists()
    assert len(r.history) == 3 and r.images_per_second > 0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["pixel_size"] == 0.5 and meta["classes"] == ["background", "particle"]
    assert meta["training"]["settings"]["width"] == 4 and meta["lineage"]["parent"] is None
    m = load_model(out)
    assert m.pixel_size == 0.5 and m.n_classes == 2
    s = evaluate_store(m, tiny_db, indices=[9, 10, 11], precision="float32")
    assert s["n"] == 3 and 0 <= s["f1"] <= 1
    # deterministic: same settings, same weights
    # ... and the engine takes the spec or its fields as keywords alike
    r2 = train(tiny_db, tmp_path / "m2.pt", **cfg.to_dict())
    a, b = torch.load(out, weights_only=True), torch.load(tmp_path / "m2.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert r2.best == r.best


def test_training_learns_and_stops_early(tiny_db, tmp_path):
    cfg = TrainConfig(
        epochs=30,
        batch_size=4,
        width=8,
        crop=None,
        val_fraction=0.25,
        patience=3,
        threads=1,
        lr=1e-2,
    )
    r = train(tiny_db, tmp_path / "learn.pt", cfg)
    assert r.best["f1"] > 0.7  # toy discs with fringes are easy
    assert r.stopped_early or len(r.history) == 30


def test_train_on_several_stores(tiny_db, tmp_path, monkeypatch):
    """Rehearsal: samples drawn from every store, validation split taken from each."""
    import napari_interfaces.simulate.database as database

    other = tmp_path / "other.zarr"
    generate_database(dict(TINY, seed=8), other, n=8, scheduler="inline")
    reads = []
    real_read = database.read_arrays

    def recording_read(group, store, idx):
        reads.append((Path(store).name, int(idx)))
        return real_read(group, store, idx)

    monkeypatch.setattr(database, "read_arrays", recording_read)
    cfg = TrainConfig(
        epochs=2, batch_size=4, width=4, crop=None, val_fraction=0.25, threads=1, lr=5e-3
    )
    out = tmp_path / "mix.pt"
    r = train([tiny_db, (other, 7)], out, cfg)  # all 12 of one store, the first 7 of the other
    # per epoch: every training sample of both stores once, then each store's held-out tail
    train_reads = {("db.zarr", i) for i in range(9)} | {("other.zarr", i) for i in range(5)}
    val_reads = [("db.zarr", i) for i in (9, 10, 11)] + [("other.zarr", i) for i in (5, 6)]
    assert len(reads) == 2 * (14 + 5)
    for epoch in range(2):
        block = reads[epoch * 19 : (epoch + 1) * 19]
        assert set(block[:14]) == train_reads and len(set(block[:14])) == 14
        assert block[14:] == val_reads
    meta = json.loads(out.with_suffix(".json").read_text())
    data = meta["training"]["data"]
    assert [
        (Path(d["store"]).name, d["n_train"], d["n_val"], d["seed"]) for d in data["stores"]
    ] == [
        ("db.zarr", 9, 3, 7),
        ("other.zarr", 5, 2, 8),
    ]
    assert (data["n_train"], data["n_val"]) == (14, 5)
    assert [Path(p).name for p in meta["lineage"]["data"]] == ["db.zarr", "other.zarr"]
    assert meta["description"] == "U-Net trained on db.zarr + other.zarr"
    # the reported validation F1 is that of the pooled held-out tails of both stores
    from napari_interfaces.segment.train import ZarrDataset, _concat, _loader, evaluate

    monkeypatch.setattr(database, "read_arrays", real_read)
    val = _concat([ZarrDataset(tiny_db, [9, 10, 11]), ZarrDataset(other, [5, 6])])
    net = load_model(out).net.float()
    assert evaluate(net, _loader(val, 4, False, 0), 2)["f1"] == pytest.approx(r.best["f1"])

    # a one-store list trains exactly as the bare path (the first store draws as alone)
    # (torch's generator is seeded first: train() draws a new network's initial weights from it)
    cfg1 = TrainConfig(epochs=1, batch_size=4, width=4, crop=32, val_fraction=0.25, threads=1)
    torch.manual_seed(0)
    train(tiny_db, tmp_path / "a.pt", cfg1)
    torch.manual_seed(0)
    train([tiny_db], tmp_path / "b.pt", cfg1)
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # stores trained on together must share the pixel size
    coarse = tmp_path / "coarse.zarr"
    generate_database(
        dict(TINY, output={"pixel_size": 1.0, "crop": 64}), coarse, n=4, scheduler="inline"
    )
    with pytest.raises(ValueError, match="pixel_size"):
        train([tiny_db, coarse], tmp_path / "c.pt", cfg1)


def test_checkpoint_resume(tiny_db, tmp_path):
    from napari_interfaces.core.progress import Cancelled, Progress

    out = tmp_path / "ck.pt"
    cfg = TrainConfig(epochs=3, batch_size=4, width=4, crop=32, threads=1, val_fraction=0.25)
    steps = []

    def cancel_in_epoch_2(done, total, desc):
        steps.append(desc)
        if "epoch 2" in desc:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        train(tiny_db, out, cfg, progress=Progress(cancel_in_epoch_2))
    ckpt = out.with_name("ck.pt.ckpt")
    assert ckpt.is_file()
    r = train(tiny_db, out, cfg)  # resumes at epoch 2
    assert [h["epoch"] for h in r.history] == [0, 1, 2]
    assert not ckpt.exists()


def test_model_registry(tmp_path, monkeypatch):
    net = UNet(UNetConfig(width=4))
    path = save_model(net, tmp_path / "reg" / "unet_a.pt", {"pixel_size": 0.3, "description": "a"})
    meta = json.loads(path.with_suffix(".json").read_text())
    from napari_interfaces.core.weights import WeightsError, sha256

    assert meta["sha256"] == sha256(path) and meta["architecture"]["width"] == 4
    assert model_info(path).pixel_size == 0.3
    # checksum is verified before loading
    meta["sha256"] = "0" * 64
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(WeightsError, match="checksum"):
        load_model(path)
    # user models live on the weights search path and get new version names
    from napari_interfaces.segment.models import user_models_dir

    p1 = save_model(net, user_models_dir() / "unet_user.pt", {"pixel_size": 0.2})
    assert any(m.path == p1 for m in list_models())
    assert next_version_path("default").name == "unet_finetuned_v1.pt"
    save_model(net, user_models_dir() / "unet_finetuned_v1.pt", {})
    assert next_version_path("unet_finetuned_v1").name == "unet_finetuned_v2.pt"


def test_cli_train_segment_evaluate(tiny_db, tmp_path, capsys):
    import tifffile

    from napari_interfaces.cli import main

    model = tmp_path / "cli.pt"
    assert (
        main(
            [
                "train",
                "--data",
                str(tiny_db),
                "--out",
                str(model),
                "--epochs",
                "1",
                "--width",
                "4",
                "--crop",
                "0",
                "--threads",
                "1",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(model),
                "--data",
                str(tiny_db),
                "--json",
                "--max-samples",
                "2",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out) >= {"f1", "iou", "n"} and out["n"] == 2
    img = tmp_path / "mic.tif"
    tifffile.imwrite(
        img,
        np.random.default_rng(0).random((70, 50)).astype(np.float32),
        imagej=True,
        resolution=(4.0, 4.0),
        metadata={"unit": "angstrom"},
    )
    assert (
        main(
            ["segment", str(img), "--model", str(model), "--out", str(tmp_path / "seg"), "--quiet"]
        )
        == 0
    )
    labels = tifffile.imread(tmp_path / "seg" / "mic_labels.tif")
    assert labels.shape == (70, 50)
    out = capsys.readouterr().out
    # 0.25 Å/px image (from the file), 0.5 Å/px model: rescaled by 0.5; the table says so
    assert "0.25 Å file" in out and " 0.5 " in out
    summary = json.loads((tmp_path / "seg" / "summary.json").read_text())
    entry = summary["images"][0]
    assert entry["pixel_size"] == 0.25 and entry["pixel_size_source"] == "file"
    assert entry["scale"] == 0.5 and set(entry["files"]) >= {"labels", "particles", "table"}
    assert (tmp_path / "seg" / "mic_particles.csv").is_file()
    assert main(["evaluate", "--model", str(tmp_path / "none.pt"), "--data", str(tiny_db)]) == 2


def test_finetune_saves_new_version(tiny_db, tmp_path):
    from napari_interfaces.segment.finetune import finetune
    from napari_interfaces.simulate.database import read_sample

    torch.manual_seed(0)
    base = save_model(UNet(UNetConfig(width=4)), tmp_path / "base.pt", {"pixel_size": 0.5})
    before = base.read_bytes()
    pairs = [read_sample(tiny_db, i)[:2] for i in (0, 1)]
    new, path = finetune(base, pairs, pixel_size=0.5, epochs=2, crop=64, out=tmp_path / "ft_v1.pt")
    assert base.read_bytes() == before and path.is_file()
    assert new.metadata["lineage"]["parent"] == "base"
    assert new.metadata["lineage"]["n_images"] == 2
    assert len(new.metadata["training"]["history"]) == 2
    enc_old = load_model(base).net.encoder.state_dict()
    enc_new = new.net.encoder.state_dict()
    assert all(torch.equal(enc_old[k], enc_new[k]) for k in enc_old)  # frozen encoder


# -- issue 16: pixel size, particles, uncertainty; issue 11: safe CLI ---------------------
def _cli(argv, capsys):
    from napari_interfaces.cli import main

    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize(
    "args, name",
    [
        (dict(pixel_size=0), "pixel_size"),
        (dict(pixel_size=1e-5), "pixel_size"),
        (dict(tile=0), "tile"),
        (dict(tile=256, overlap=256), "overlap"),
        (dict(batch_size=0), "batch_size"),
        (dict(precision="half"), "precision"),
    ],
)
def test_segment_parameters_are_validated(args, name):
    from napari_interfaces.core.errors import ParameterError
    from napari_interfaces.segment.inference import SegmentParams

    with pytest.raises(ParameterError, match=f"^{name}:"):
        SegmentParams(**args)


@pytest.mark.parametrize(
    "extra, name",
    [
        (["--epochs", "0"], "--epochs"),
        (["--val-fraction", "1.5"], "--val-fraction"),
        (["--batch-size", "0"], "--batch-size"),
        (["--crop", "50"], "--crop"),
        (["--scale-range", "2", "1"], "--scale-range"),
    ],
)
def test_cli_train_rejects_bad_values(tiny_db, tmp_path, capsys, extra, name):
    out = tmp_path / "m.pt"
    rc, _, err = _cli(["train", "--data", tiny_db, "--out", out, "--quiet", *extra], capsys)
    assert rc == 2 and name in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_cli_train_out_folder_and_overwrite(tiny_db, tmp_path, capsys):
    folder = tmp_path / "models"
    folder.mkdir()
    rc, _, err = _cli(["train", "--data", tiny_db, "--out", folder, "--quiet"], capsys)
    assert rc == 2 and "is a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # nothing beside it
    old = save_model(UNet(UNetConfig(width=4)), tmp_path / "m.pt", {"pixel_size": 0.5})
    rc, _, err = _cli(["train", "--data", tiny_db, "--out", old, "--quiet"], capsys)
    assert rc == 2 and "--overwrite" in err


def test_killed_training_keeps_the_previous_model(tiny_db, tmp_path, monkeypatch):
    from napari_interfaces.core.outputs import TMP_MARK, _host
    from napari_interfaces.segment import train as train_mod

    out = tmp_path / "m.pt"
    save_model(UNet(UNetConfig(width=4)), out, {"pixel_size": 0.5, "description": "previous"})
    before = (out.read_bytes(), out.with_suffix(".json").read_bytes())
    stale = tmp_path / f".m.pt.{TMP_MARK}-train-{_host()}-4194305-deadbeef"  # process gone
    stale.write_bytes(b"half a model")

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "fit", killed)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_db, out, TrainConfig(epochs=1, width=4, crop=None, threads=1))
    assert (out.read_bytes(), out.with_suffix(".json").read_bytes()) == before
    assert not stale.exists()  # temp files of a killed run are removed on start-up
    assert load_model(out).metadata["description"] == "previous"


def test_mismatched_model_files_fail_on_load(tmp_path):
    from napari_interfaces.core.weights import WeightsError

    a = save_model(UNet(UNetConfig(width=4)), tmp_path / "a.pt", {})
    torch.manual_seed(1)
    b = save_model(UNet(UNetConfig(width=4)), tmp_path / "b.pt", {})
    a.write_bytes(b.read_bytes())  # a .pt out of step with its .json
    with pytest.raises(WeightsError, match="a.pt"):
        load_model(a)


def test_cli_segment_safe_outputs_and_bad_model(tmp_path, capsys):
    import tifffile

    net = UNet(UNetConfig(width=4))
    model = save_model(net, tmp_path / "tiny.pt", {"pixel_size": 0.5})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    img = np.random.default_rng(0).random((40, 48)).astype(np.float32)
    for d in ("a", "b"):
        tifffile.imwrite(tmp_path / d / "mic.tif", img)
    out = tmp_path / "seg"
    args = ["segment", tmp_path / "a" / "mic.tif", tmp_path / "b" / "mic.tif", "--model", model]
    rc, text, _ = _cli([*args, "--out", out, "--quiet", "--no-estimate"], capsys)
    assert rc == 0
    # same-named inputs get their own files; no pixel size: the model's is assumed, and said
    names = sorted(p.name for p in out.iterdir())
    assert "a_mic_labels.tif" in names and "b_mic_labels.tif" in names
    assert "assumed" in text and "summary.json" in names
    summary = json.loads((out / "summary.json").read_text())
    assert [e["pixel_size_source"] for e in summary["images"]] == ["assumed", "assumed"]
    # an existing output folder needs --overwrite; a stale file does not survive it
    rc, _, err = _cli([*args, "--out", out, "--quiet"], capsys)
    assert rc == 2 and "--overwrite" in err
    (out / "stale.txt").write_text("old")
    rc, _, _ = _cli([*args, "--out", out, "--quiet", "--overwrite", "--pixel-size", "0.5"], capsys)
    assert rc == 0 and not (out / "stale.txt").exists()
    # a 1-dpi resolution tag (2.54e8 Å/px) is not taken as the pixel size
    dpi = tmp_path / "dpi.tif"
    tifffile.imwrite(dpi, img, resolution=(1.0, 1.0), resolutionunit="INCH")
    rc, _, err = _cli(["segment", dpi, "--model", model, "--out", tmp_path / "d", "--quiet",
                       "--no-estimate"], capsys)  # fmt: skip
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert rc == 0 and summary["images"][0]["pixel_size_source"] == "assumed"
    # bad values and bad model files: one line naming the parameter or the file
    for extra, name in (
        (["--pixel-size", "0"], "--pixel-size"),
        (["--pixel-size", "1e-5"], "--pixel-size"),
        (["--tile", "0"], "--tile"),
        (["--tile", "64", "--overlap", "64"], "--overlap"),
    ):
        rc, _, err = _cli([*args, "--out", tmp_path / "x", *extra], capsys)
        assert rc == 2 and name in err and len(err.strip().splitlines()) == 1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    bad.with_suffix(".json").write_text('{"format": "napari-interfaces/unet"}')
    rc, _, err = _cli(
        ["segment", tmp_path / "a" / "mic.tif", "--model", bad, "--out", tmp_path / "y"], capsys
    )
    assert rc == 2 and "bad.pt" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_particles_split_and_measured():
    from napari_interfaces.segment.particles import match_instances, measure_particles

    yy, xx = np.mgrid[:100, :160]
    a = (yy - 50) ** 2 + (xx - 45) ** 2 < 30**2
    b = (yy - 50) ** 2 + (xx - 103) ** 2 < 30**2  # touches a (a 2 px neck)
    c = (yy - 5) ** 2 + (xx - 150) ** 2 < 14**2  # cut by the image edge
    img = np.where(a | b, 2.0, 0.0) + np.where(c, 5.0, 0.0)
    inst, table = measure_particles(a | b | c, pixel_size=0.5, image=img)
    assert len(table) == 3 and inst.max() == 3
    d = np.sort(table["equivalent_diameter_nm"])
    # two 60 px discs at 0.5 Å/px = 3 nm each (the watershed line shaves a little)
    assert d[1:] == pytest.approx([3.0, 3.0], abs=0.08)
    edge = table["touches_edge"]
    assert edge.sum() == 1 and table["mean_intensity"][edge][0] == pytest.approx(5.0)
    assert np.all(table["circularity"][~edge] > 0.85)
    feats = table.features()
    assert list(feats["index"]) == [1, 2, 3]
    truth = np.zeros_like(inst)
    truth[a], truth[b & ~a], truth[c] = 1, 2, 3
    m = match_instances(inst, truth, 0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (3, 0, 0)
    # without the split the two touching discs are one instance: one of them is missed
    from scipy import ndimage

    m = match_instances(ndimage.label(a | b | c)[0], truth, 0.5)
    assert (m["tp"], m["fp"], m["fn"]) == (2, 0, 1)


def test_uncertainty_tta_and_correction_gain():
    from napari_interfaces.segment.uncertainty import (
        correction_gain,
        dihedral_tta,
        entropy_map,
        least_certain,
        particle_uncertainty,
    )

    # an orientation-equivariant "network": TTA gives its output and no disagreement
    x = torch.rand(2, 1, 16, 16)

    def forward(t):
        p = torch.sigmoid(4 * (t - 0.5))
        return torch.cat([1 - p, p], 1)

    mean, sq = dihedral_tta(forward, x)
    assert torch.allclose(mean, forward(x), atol=1e-6)
    assert torch.allclose(sq, mean[:, 1] ** 2, atol=1e-6)
    assert entropy_map(np.stack([np.ones((2, 2)), np.zeros((2, 2))])).max() < 1e-4
    # two predicted particles; the uncertain one (id 2) is the wrong one
    truth = np.zeros((40, 80), bool)
    truth[10:30, 5:25] = True
    truth[10:30, 50:70] = True
    inst = np.zeros((40, 80), int)
    inst[10:30, 5:25] = 1
    inst[12:20, 50:58] = 2
    unc = np.zeros((40, 80), np.float32)
    unc[10:30, 48:72] = 0.8
    scores = particle_uncertainty(inst, unc)
    assert scores[1] > scores[0] and list(least_certain(scores, 0.5)) == [2]
    g = correction_gain([(inst, truth, scores)], fraction=0.5)
    assert g["f1_before"] < 0.8 and g["f1_uncertain"] == pytest.approx(1.0)
    assert g["n_corrected"] == 1 and g["f1_random"] < g["f1_uncertain"]


def test_scale_augmentation_magnifies_image_and_labels():
    from napari_interfaces.segment.augment import random_scale_crop

    yy, xx = np.mgrid[:128, :128]
    disc = ((yy - 64) ** 2 + (xx - 64) ** 2 < 16**2).astype(np.uint8)
    rng = np.random.default_rng(0)
    img, lab = random_scale_crop(rng, disc.astype(np.float32), disc, 64, (2.0, 2.0))
    assert img.shape == lab.shape == (64, 64)
    # magnified 2x: the disc's area is 4x (where it is fully inside the crop it is ~4*804 px)
    area = lab.sum()
    assert area <= 4 * disc.sum() * 1.05
    img, lab = random_scale_crop(rng, disc.astype(np.float32), disc, 128, (0.5, 0.5))
    assert lab.shape == (128, 128)
    # shrunk 2x, padded by reflection: every copy of the disc has a quarter of the area
    from scipy import ndimage

    lbl, n = ndimage.label(lab)
    full = [s for s in ndimage.sum(lab, lbl, range(1, n + 1)) if s > 150]
    assert full and all(abs(s - disc.sum() / 4) < 0.1 * disc.sum() / 4 for s in full)


def test_pixel_size_estimated_from_fringes_and_reported():
    from napari_interfaces.segment.scale import estimate_pixel_size

    yy, xx = np.mgrid[:256, :256]
    rng = np.random.default_rng(0)
    for ps in (0.1, 0.25, 0.6):
        img = rng.normal(0, 1, (256, 256))
        img += (
            0.6
            * np.cos(2 * np.pi * (0.8 * xx + 0.6 * yy) * ps / 2.3546)
            * ((xx - 128) ** 2 + (yy - 128) ** 2 < 60**2)
        )
        assert estimate_pixel_size(img).pixel_size == pytest.approx(ps, rel=0.03)
    assert estimate_pixel_size(rng.normal(0, 1, (256, 256))).pixel_size is None
    # segment_image reports the estimated pixel size and where it came from
    net = UNet(UNetConfig(width=4)).eval()
    model = LoadedModel(net, {"architecture": net.config.to_dict(), "pixel_size": 0.5})
    img = rng.normal(0, 1, (256, 256)) + np.cos(2 * np.pi * 0.25 * xx / 2.3546)
    res = segment_image(img, model, tile=128, precision="float32")
    assert res.pixel_size_source == "estimated" and res.pixel_size == pytest.approx(0.25, rel=0.03)
    assert res.scale == pytest.approx(0.5, rel=0.03) and res.labels.shape == (256, 256)
    assert res.summary()["pixel_size_source"] == "estimated"


def test_multiscale_inference_averages_scales():
    from napari_interfaces.segment.inference import MULTISCALE

    torch.manual_seed(0)
    net = UNet(UNetConfig(width=4)).eval()
    model = LoadedModel(net, {"architecture": net.config.to_dict(), "pixel_size": 0.5})
    img = np.random.default_rng(2).random((90, 70)).astype(np.float32)
    kw = dict(tile=64, precision="float32")
    one = segment_image(img, model, pixel_size=0.5, **kw)
    parts = [segment_image(img, model, pixel_size=0.5 * f, **kw).probabilities for f in MULTISCALE]
    ms = segment_image(img, model, pixel_size=0.5, scales=MULTISCALE, **kw)
    assert ms.pixel_size == one.pixel_size == 0.5 and ms.probabilities.shape == (2, 90, 70)
    assert np.allclose(ms.probabilities, np.mean(parts, axis=0), atol=1e-5)
    assert np.allclose(ms.probabilities.sum(0), 1, atol=1e-5)


# -- issue 20: one spec per workflow ---------------------------------------------------------
def test_segment_spec_drives_cli_help_errors_and_engine(tmp_path, capsys):
    from napari_interfaces.cli import build_parser
    from napari_interfaces.core.errors import ParameterError
    from napari_interfaces.segment.inference import SegmentParams

    sub = {
        a.dest: a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction"
    }
    helps = {n: sub["command"].choices[n].format_help() for n in ("segment", "train", "evaluate")}
    text = " ".join(helps["segment"].split())
    assert "--pixel-size Å" in text and "[0.005, 50]; default: unknown" in text
    assert "--min-area nm²" in text and "--no-particles" in text and "--no-estimate" in text
    assert "--overlap px" in text and "default: auto" in text and "advanced options" in text
    text = " ".join(helps["train"].split())
    assert "--crop px" in text and "'whole' allowed" in text and "--scale-range LO HI" in text
    assert "--no-deterministic" in text and "--no-resume" in text and "--epochs 12" in text
    assert "--max-samples" in helps["evaluate"]
    # a bad value: one line naming the flag, exit status 2, nothing written
    img = tmp_path / "mic.tif"
    import tifffile

    tifffile.imwrite(img, np.zeros((40, 40), np.float32))
    for extra, msg in (
        (["--min-area", "-1"], "--min-area: must be ≥ 0, got -1"),
        (["--split-depth", "0"], "--split-depth: must be in (0, 1000], got 0"),
        (["--precision", "half"], "--precision: must be one of auto, float32, bfloat16"),
        (["--lattice-spacing", "80"], "--lattice-spacing: must be in (0, 50], got 80"),
    ):
        rc, _, err = _cli(["segment", img, "--out", tmp_path / "o", *extra], capsys)
        assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    rc, _, err = _cli(["segment", img], capsys)
    assert rc == 2 and "--out: required" in err
    assert not (tmp_path / "o").exists()
    # the engine names the field, never the flag
    with pytest.raises(ParameterError, match="^min_particle_area: must be ≥ 0"):
        SegmentParams(min_particle_area=-1)
    with pytest.raises(TypeError):
        segment_image(np.zeros((8, 8)), None, 0.5)  # a number is not a spec
    # a spec and its keywords give the same result
    torch.manual_seed(0)
    net = UNet(UNetConfig(width=4)).eval()
    model = LoadedModel(net, {"architecture": net.config.to_dict(), "pixel_size": 0.5})
    im = np.random.default_rng(3).random((80, 72)).astype(np.float32)
    kw = dict(pixel_size=0.4, tile=64, precision="float32", particles=True, min_particle_area=0.1)
    a = segment_image(im, model, SegmentParams(**kw))
    b = segment_image(im, model, **kw)
    c = segment_image(im, model, SegmentParams(pixel_size=0.4), tile=64, precision="float32",
                      particles=True, min_particle_area=0.1)  # fmt: skip
    for r in (b, c):
        np.testing.assert_array_equal(a.probabilities, r.probabilities)
        np.testing.assert_array_equal(a.instances, r.instances)


def test_train_and_finetune_specs_validate_once():
    from napari_interfaces.core.errors import ParameterError
    from napari_interfaces.segment.finetune import FinetuneFolderParams, FinetuneParams

    assert TrainConfig(crop=0).crop_side is None and TrainConfig(crop="whole").crop_side is None
    for kw, name in (
        (dict(crop=50), "crop"),
        (dict(scale_range=(2, 1)), "scale_range"),
        (dict(scale_range=(1, 2, 3)), "scale_range"),
        (dict(val_fraction=1), "val_fraction"),
        (dict(seed=-1), "seed"),
        (dict(threads=0), "threads"),
    ):
        with pytest.raises(ParameterError) as err:
            TrainConfig(**kw)
        assert err.value.name == name
    assert TrainConfig(scale_range=["0.5", "2"]).scale_range == (0.5, 2.0)
    folder = FinetuneFolderParams()
    assert (folder.epochs, folder.lr, folder.patience, folder.val_band) == (12, 5e-4, 4, 0.2)
    assert FinetuneParams().epochs == 5 and FinetuneParams().freeze_encoder is True
    with pytest.raises(ParameterError, match="^val_band:"):
        FinetuneFolderParams(val_band=0.9)
    with pytest.raises(ParameterError, match="^crop: must be a multiple of 32"):
        FinetuneParams(crop=48)
