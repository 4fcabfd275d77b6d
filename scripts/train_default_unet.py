"""Train the shipped default U-Net, reproducibly, on this project's own simulated data.

One command (CPU, about 1 h on a quiet 2-core machine)::

    python scripts/train_default_unet.py --install

1. generates the training database from the shipped spec
   ``simulate/examples/hrtem_default.yaml`` (seed 1001, 960 samples) and a
   held-out test database from the same spec with another seed (2002, 96
   samples) under ``benchmarks/_work/default_unet/``, with the NumPy
   multislice backend (``--device``; other backends agree to ~1e-5 but are
   not bit-identical, so the pinned backend makes the databases reproducible
   bit for bit);
2. stage 1: trains a width-16 U-Net (ResNet-18 block layout) with the
   settings below (deterministic, seed 0) at the database's 0.2 Å/px;
3. stage 2 (scale robustness, issue 16), validated at fixed per-sample
   scales: (a) continues from stage 1 with scale augmentation (every crop
   magnified by a log-uniform factor in ``SCALE_SETTINGS["scale_range"]``,
   i.e. a pixel size wrong by up to that factor) and resolution degradation
   (30 % of the images blurred as a 1–10× coarser sampling would: 0.2–2
   Å/px); (b) a short refinement with half the crops at the database's
   scale (``REFINE_SETTINGS``), validated at the database's pixel size, for
   accuracy at the right pixel size;
4. evaluates it on the held-out set at the database's pixel size and, when
   held-out F1 >= 0.95 (``--install``), writes the weights and metadata
   (sha256, settings of both stages, lineage, validation and held-out
   scores) to ``src/napari_interfaces/weights/unet_hrtem_default.{pt,json}``.

5. stage 3 (issue 23, ``--stage realistic``): fine-tunes the stage-2 model
   (the previously shipped one; ``--init``, default ``default``) on a
   database from the ``simulate/examples/hrtem_transfer.yaml`` recipe
   (``--recipe``; seed 5001, 240 samples; realistic aperture, coherence,
   defocus/astigmatism, support, dose, drift/blur, illumination gradient,
   and labels 1.2 Å inside the exit-wave boundary) with
   ``REALISTIC_SETTINGS``; held-out sets: seed 6002 (64 samples) of that
   recipe and seed 2002 of ``hrtem_default``. ``--recipe hrtem_realistic``
   reruns candidate A (seeds 3001/4002).
   ``--realistic-epochs`` / ``--realistic-n`` lengthen it (candidate C:
   12 epochs of 480 samples); ``--realistic-scale full`` gives every crop
   stage 2a's scale augmentation (candidates F/G). ``--rehearsal N`` adds
   N of ``hrtem_default``'s *training* images (seed 1001, the images the
   parent was trained on) relabelled with the recipe's ``label_margin``
   (:func:`relabelled_default_store`), so the fine-tuning learns the new
   label boundary on the new physics without forgetting the old physics
   (candidate H: ``--recipe hrtem_transfer_margin06 --rehearsal 240``).
   It is installed (``--install``) only when it passes every gate of
   :func:`gate`: simulated held-out F1 >= 0.95 on the ``hrtem_default``
   held-out images (seed 2002, never trained on) relabelled with the
   recipe's ``label_margin`` (same images, labels moved inwards: fresh
   simulated images judged by the candidate's own label definition) — F1 on
   a fresh seed of the recipe itself and against the unchanged, wider
   ``hrtem_default`` labels is computed, stored and reported, not required
   (see :func:`gate` for why) — and, where the real validation frames are
   present (``../shared/data/hrtem_real``, msa-em/microscopy-seg-track,
   CC-BY-4.0; used to *choose*, never trained on), issue 23's targets
   ``REAL_GATES`` (pooled pixel F1 >= 0.92 with no pixel size, >= 0.90 with
   one 2× wrong either way, instance F1 of the engine's particle instances
   >= 0.93) and a pooled F1 above the current default's.
   ``--stage gate --init CAND.pt [--out JUDGED.pt] [--install]`` judges (and
   installs) an already trained candidate without retraining.

``--stage scale --init MODEL.pt`` runs stage 2 only, from a given stage-1
model; ``--stage refine --init MODEL.pt`` runs 2b only from a stage-2a model
(the shipped model was made in these two steps from the stage-1 model of
this script, which is the previously shipped model).

Everything it depends on (spec, seeds, settings) is in the repository. The
databases are simulated with the ``transmission`` multislice band-limit scheme
(Kirkland's and abTEM's, the simulator's default until 2026-12-07, on which the
shipped model was trained), unless ``NAPARI_INTERFACES_MULTISLICE_BANDLIMIT``
says otherwise, so they stay reproducible bit for bit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

SPEC = "hrtem_default"
TRAIN_SEED, N_TRAIN = 1001, 960
TEST_SEED, N_TEST = 2002, 96
SETTINGS = dict(
    epochs=16,
    batch_size=8,
    lr=1e-3,
    crop=192,
    val_fraction=0.1,
    patience=16,  # validation F1 is noisy early on: no early stop
    width=16,
    blocks=(2, 2, 2, 2),
    deterministic=True,
    seed=0,
    threads=1,  # leaves a core free; 2 threads were 10x slower on an oversubscribed machine
    device="cpu",
)
#: stage 2a: every crop at a random scale, 30 % blurred (robustness)
SCALE_SETTINGS = dict(
    SETTINGS,
    epochs=12,
    lr=5e-4,
    crop=128,
    patience=12,
    scale_range=(0.4, 2.5),
    degrade_prob=0.3,
    degrade_range=(1.0, 10.0),
)
#: stage 2b: half the crops at the database's scale again (accuracy at the right pixel size)
REFINE_SETTINGS = dict(
    SETTINGS,
    epochs=4,
    lr=2e-4,
    crop=160,
    patience=4,
    scale_range=(0.5, 2.0),
    scale_prob=0.5,
    degrade_prob=0.15,
    degrade_range=(1.0, 10.0),
    val_scale=False,  # keep the epoch most accurate at the right pixel size
)
#: stage 3 (issue 23): fine-tuning on the realistic recipe, from the shipped model
#: recipe -> (train seed, n train, test seed, n test); ``hrtem_transfer`` is the
#: chosen one, ``hrtem_realistic`` (harsher: doses from 40 e/Å², more blur) was
#: candidate A
RECIPES = {
    "hrtem_transfer": (5001, 240, 6002, 64),
    "hrtem_realistic": (3001, 480, 4002, 64),
    "hrtem_transfer_margin06": (7001, 240, 8002, 64),
}
REALISTIC_SPEC = "hrtem_transfer"
#: stage 2b's augmentation and validation, a shorter schedule at a higher rate
REALISTIC_SETTINGS = dict(REFINE_SETTINGS, epochs=5, lr=3e-4, patience=5)
#: stage 3 with stage 2a's full scale augmentation (``--realistic-scale full``):
#: every crop magnified by a factor in 0.4-2.5 and 30 % degraded, as in
#: ``SCALE_SETTINGS`` (``REALISTIC_SETTINGS`` rescales only half the crops, by
#: 0.5-2, and C/E lost the ×2-wrong robustness of stage 2 as they ran longer);
#: still validated at the database's pixel size, so the kept epoch is chosen on
#: the simulated validation split only
REALISTIC_FULL_SCALE_SETTINGS = dict(
    REALISTIC_SETTINGS,
    scale_range=SCALE_SETTINGS["scale_range"],
    scale_prob=1.0,
    degrade_prob=SCALE_SETTINGS["degrade_prob"],
)
#: held-out F1 at the database's pixel size a candidate needs to be installed
MIN_HELDOUT_F1 = 0.95
#: stage 3's install gates (issue 23's targets), on the real validation frames
#: (``benchmarks/bench_segment_real.py``; model *selection* only, never trained
#: on): pooled pixel F1 with no pixel size, the worse of a pixel size 2× too
#: large / too small, and instance F1 of the engine's particle instances
REAL_GATES = {"f1_no_pixel_size": 0.92, "f1_2x_wrong": 0.90, "instance_f1": 0.93}


def main(argv=None) -> int:
    import os

    from napari_interfaces.simulate.multislice import BANDLIMIT_ENV

    # the scheme the shipped model's databases were made with (issue 27 changed the default)
    os.environ.setdefault(BANDLIMIT_ENV, "transmission")
    from napari_interfaces.core.progress import cli_progress
    from napari_interfaces.segment.models import DEFAULT_MODEL, load_model, save_model
    from napari_interfaces.segment.train import TrainConfig, train
    from napari_interfaces.simulate.database import generate_database

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=REPO / "benchmarks" / "_work" / "default_unet")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=SETTINGS["epochs"], help="stage 1")
    ap.add_argument("--scale-epochs", type=int, default=SCALE_SETTINGS["epochs"], help="stage 2")
    ap.add_argument("--n-train", type=int, default=N_TRAIN)
    ap.add_argument("--device", default="numpy", help="multislice backend for the databases")
    ap.add_argument(
        "--stage", choices=("all", "scale", "refine", "realistic", "gate"), default="all"
    )
    ap.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=REALISTIC_SPEC,
        help="stage 3's database recipe (simulate/examples/RECIPE.yaml)",
    )
    ap.add_argument("--init", type=Path, help="stage-1 (or, for refine, stage-2a) model")
    ap.add_argument(
        "--realistic-epochs",
        type=int,
        default=REALISTIC_SETTINGS["epochs"],
        help="stage 3's epochs",
    )
    ap.add_argument(
        "--realistic-n", type=int, help="stage 3's training samples (default: the recipe's)"
    )
    ap.add_argument(
        "--realistic-scale",
        choices=("half", "full"),
        default="half",
        help="stage 3's scale augmentation: half the crops at 0.5-2x (candidates A-E) or "
        "every crop at 0.4-2.5x and 30 %% degraded as in stage 2a",
    )
    ap.add_argument(
        "--rehearsal",
        type=int,
        default=0,
        metavar="N",
        help=f"stage 3: also train on N {SPEC} training images (seed {TRAIN_SEED}) relabelled "
        "with the recipe's label_margin (rehearsal; 0: off)",
    )
    ap.add_argument(
        "--threads", type=int, default=SETTINGS["threads"], help="torch threads (stage 3)"
    )
    ap.add_argument(
        "--out", type=Path, help="candidate model (default WORK/unet_hrtem_default.pt)"
    )
    ap.add_argument(
        "--install",
        action="store_true",
        help=f"copy into the package when held-out F1 >= {MIN_HELDOUT_F1} (stage 3: every gate)",
    )
    args = ap.parse_args(argv)
    if args.rehearsal < 0:
        ap.error("--rehearsal must be >= 0")
    if args.rehearsal and args.stage != "realistic":
        ap.error("--rehearsal is an option of --stage realistic")
    if args.stage == "gate" and not args.init:
        ap.error("--stage gate needs --init CANDIDATE.pt")
    if args.stage in ("realistic", "gate"):
        return realistic_stage(args)
    if args.stage != "all" and not args.init:
        ap.error(f"--stage {args.stage} needs --init")
    args.work.mkdir(parents=True, exist_ok=True)
    train_db, test_db = args.work / "train.zarr", args.work / "test.zarr"
    t0 = time.time()
    for db, seed, n in ((train_db, TRAIN_SEED, args.n_train), (test_db, TEST_SEED, N_TEST)):
        r = generate_database(
            SPEC,
            db,
            n=n,
            seed=seed,
            workers=args.workers,
            progress=cli_progress(),
            device=args.device,
        )
        print(
            f"{db.name}: {r.computed} computed, {r.skipped} already done, "
            f"{r.samples_per_minute:.1f} samples/min",
            flush=True,
        )
    t_db = time.time() - t0
    out = args.out or args.work / f"{DEFAULT_MODEL}.pt"
    stages = []  # (name, settings, model path) run in order
    init = args.init
    if args.stage == "all":
        init = args.work / f"{DEFAULT_MODEL}_stage1.pt"
        stages.append(("1", dict(SETTINGS, epochs=args.epochs), None, init))
    if args.stage in ("all", "scale"):
        s2a = args.work / f"{DEFAULT_MODEL}_stage2a.pt"
        stages.append(("2a", dict(SCALE_SETTINGS, epochs=args.scale_epochs), init, s2a))
        init = s2a
    stages.append(("2b", dict(REFINE_SETTINGS), init, out))
    lineage = []
    if args.init:
        m = load_model(args.init).metadata
        lineage.append(
            {
                "model": Path(args.init).stem,
                "sha256": m.get("sha256"),
                "settings": (m.get("training") or {}).get("settings"),
                "metrics": m.get("metrics"),
                "metrics_heldout": m.get("metrics_heldout"),
            }
        )
    for name, settings, start, path in stages:
        if start is not None:
            settings = dict(settings, init=str(start))
        result = train(
            train_db,
            path,
            TrainConfig(**settings),
            progress=cli_progress(),
            description="default HRTEM nanoparticle model (Au on a-C, 300 kV, 0.2 Å/px; "
            "robust to a pixel size wrong by 0.5-2x)",
        )
        print(
            f"stage {name}: best validation {result.best}, "
            f"{result.images_per_second:.1f} images/s",
            flush=True,
        )
        if path != out:
            m = load_model(path).metadata
            lineage.append(
                {
                    "stage": name,
                    "model": path.stem,
                    "sha256": m.get("sha256"),
                    "settings": (m.get("training") or {}).get("settings"),
                    "metrics": m.get("metrics"),
                    "history": (m.get("training") or {}).get("history"),
                }
            )

    from napari_interfaces.segment.inference import evaluate_store

    model = load_model(out)
    held = evaluate_store(model, test_db)
    print("held-out:", json.dumps(held), flush=True)
    meta = dict(model.metadata)
    for k in ("format", "format_version", "architecture", "sha256"):
        meta.pop(k, None)
    meta["metrics_heldout"] = dict(held, store_seed=TEST_SEED, spec=SPEC)
    meta["training"]["database_seconds"] = round(t_db, 1)
    meta["training"]["command"] = "python scripts/train_default_unet.py --install"
    meta["training"]["stages"] = lineage
    meta["lineage"] = {
        "parent": lineage[-1]["model"] if lineage else None,
        "parent_sha256": lineage[-1]["sha256"] if lineage else None,
        "data": f"spec {SPEC} seed {TRAIN_SEED} n {args.n_train} device {args.device}",
    }
    save_model(model.net, out, meta)
    if args.install:
        if held["f1"] < MIN_HELDOUT_F1:
            print(f"not installed: held-out F1 {held['f1']} < {MIN_HELDOUT_F1}", flush=True)
            return 1
        dest = REPO / "src" / "napari_interfaces" / "weights"
        save_model(model.net, dest / f"{DEFAULT_MODEL}.pt", meta)
        print(f"installed into {dest}")
    return 0


def relabelled_default_store(
    work: Path,
    label_margin: float,
    workers: int,
    device: str,
    *,
    seed: int = TEST_SEED,
    n: int = N_TEST,
    split: str = "test",
):
    """``hrtem_default``'s images with a candidate's label definition.

    The same spec with ``label_margin`` added (a constant: the random draws,
    hence the images, are those of ``hrtem_default`` with that seed; only
    the labels move inwards). With the held-out seed (2002, ``split``
    "test"), a model trained on a recipe with microscopist-like boundaries
    is judged on the old physics by its own label definition; with the
    training seed (1001, ``split`` "train"), it is stage 3's rehearsal data
    (``--rehearsal N``: the parent's own training images, relabelled).
    """
    from napari_interfaces.core.progress import cli_progress
    from napari_interfaces.simulate.database import generate_database
    from napari_interfaces.simulate.spec import load_spec

    raw = dict(load_spec(SPEC).raw)
    raw["parameters"] = dict(raw["parameters"], label_margin=float(label_margin))
    raw["name"] = f"{SPEC}_margin{label_margin:g}"
    db = work / f"{split}_{SPEC}_margin{label_margin:g}.zarr"
    r = generate_database(
        raw,
        db,
        n=n,
        seed=seed,
        workers=workers,
        progress=cli_progress(),
        device=device,
    )
    print(f"{db}: {r.computed} computed, {r.skipped} already done", flush=True)
    return db


def gate(model, parent, recipe: str, own: Path, old: Path, workers=2, device="numpy"):
    """Every install gate of a stage-3 candidate: ``(passed, numbers, held-out scores)``.

    Simulated (required): held-out F1 >= ``MIN_HELDOUT_F1`` at the database's
    pixel size on the ``hrtem_default`` held-out images ``old`` (seed 2002,
    fresh: never trained on, rehearsal included) relabelled with the
    recipe's ``label_margin`` (:func:`relabelled_default_store`), i.e. fresh
    simulated images judged against the candidate's own label definition
    (``sim_f1_default_relabelled``). Real (where the frames are present):
    ``REAL_GATES`` and a pooled F1 above the parent's.

    Computed, stored and reported but not required: F1 on ``own``, a fresh
    seed of the candidate's recipe (``sim_f1_own_recipe``), and against the
    ``hrtem_default`` labels as they are, wider by the margin
    (``sim_f1_default_labels``). Why: the 0.95 of issue 23 ("still reaches
    >= 0.95 on fresh simulated images") is the level the shipped model
    reached on ``hrtem_default``'s images. The margin-0.6 recipe is
    deliberately harsher (objective aperture, thick support, dose down to
    300 e/Å², drift and blur) and no candidate (A-G) has reached even 0.90
    on it, so 0.95 there measures the recipe's difficulty, not a regression
    (decided by the lead, 2026-12-07).
    """
    from napari_interfaces.segment.inference import evaluate_store
    from napari_interfaces.simulate.spec import load_spec

    margin = float(load_spec(recipe).parameters.get("label_margin", 0.0))
    relab = relabelled_default_store(Path(old).parent, margin, workers, device)
    held = {"own": evaluate_store(model, own), "old": evaluate_store(model, old)}
    nums = {
        "sim_f1_own_recipe": held["own"]["f1"],
        "sim_f1_default_relabelled": evaluate_store(model, relab)["f1"],
        "sim_f1_default_labels": held["old"]["f1"],
        "label_margin": margin,
    }
    ok = nums["sim_f1_default_relabelled"] >= MIN_HELDOUT_F1
    real = _real_scores(model)
    if real is not None:
        parent_real = _real_scores(parent, full=False)
        nums.update(real)
        nums["parent_f1_no_pixel_size"] = parent_real["f1_no_pixel_size"]
        ok = ok and all(real[k] >= v for k, v in REAL_GATES.items())
        ok = ok and real["f1_no_pixel_size"] > parent_real["f1_no_pixel_size"]
    nums["passed"] = bool(ok)
    print("gates:", json.dumps(nums), flush=True)
    return ok, nums, held


def _real_scores(model, full: bool = True) -> dict | None:
    """Issue 23's real-frame numbers (see ``REAL_GATES``), None when the frames are absent."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_segment_real import REAL, REF_PIXEL_SIZE, load_real, predict, score_frames

    if not (REAL / "image").is_dir():
        return None
    frames = load_real()

    def score(pixel_size=None):
        masks, _, inst = predict(model, frames, pixel_size=pixel_size)
        return score_frames(masks, frames, inst)

    s = score()
    out = {"f1_no_pixel_size": s["f1"], "instance_f1": s["inst_f1"]}
    if full:
        wrong = [score(f * REF_PIXEL_SIZE) for f in (2.0, 0.5)]
        out["f1_px_x2"], out["f1_px_x0.5"] = wrong[0]["f1"], wrong[1]["f1"]
        out["f1_2x_wrong"] = min(w["f1"] for w in wrong)
    return out


def realistic_stage(args) -> int:
    """Stage 3: fine-tune ``--init`` (default: the shipped model) on the realistic recipe."""
    from napari_interfaces.core.progress import cli_progress
    from napari_interfaces.segment.models import DEFAULT_MODEL, load_model, save_model
    from napari_interfaces.simulate.database import generate_database
    from napari_interfaces.simulate.spec import load_spec

    recipe = args.recipe
    train_seed, n_train, test_seed, n_test = RECIPES[recipe]
    n_train = args.realistic_n or n_train
    sub = recipe.removeprefix("hrtem_")
    work = args.work.parent / sub if args.work.name == "default_unet" else args.work / sub
    work.mkdir(parents=True, exist_ok=True)
    train_db, test_db = work / "train.zarr", work / "test.zarr"
    old_test = args.work / "test.zarr"
    t0 = time.time()
    jobs = [
        (recipe, test_db, test_seed, n_test),
        (recipe, train_db, train_seed, n_train),
        (SPEC, old_test, TEST_SEED, N_TEST),
    ]
    if args.stage == "gate":  # judging only: no training database
        del jobs[1]
    for spec, db, seed, n in jobs:
        r = generate_database(
            spec,
            db,
            n=n,
            seed=seed,
            workers=args.workers,
            progress=cli_progress(),
            device=args.device,
        )
        print(f"{db}: {r.computed} computed, {r.skipped} already done", flush=True)
    rehearsal_db = None
    if args.rehearsal and args.stage != "gate":
        margin = float(load_spec(recipe).parameters.get("label_margin", 0.0))
        rehearsal_db = relabelled_default_store(
            args.work,
            margin,
            args.workers,
            args.device,
            seed=TRAIN_SEED,
            n=args.rehearsal,
            split="train",
        )
    t_db = time.time() - t0
    if args.stage == "gate":
        # judge (and with --install, install) an already trained candidate
        parent, out = load_model("default"), Path(args.init)
        model = load_model(out)
        meta = dict(model.metadata)
    else:
        init = args.init or "default"
        parent = load_model(init)
        out = args.out or work / f"{DEFAULT_MODEL}_stage3.pt"
        meta = _train_stage3(
            args, parent, init, recipe, train_db, out, n_train, t_db, rehearsal_db
        )
        model = load_model(out)
    for k in ("format", "format_version", "architecture", "sha256"):
        meta.pop(k, None)
    ok, nums, held = gate(model, parent, recipe, test_db, old_test, args.workers, args.device)
    held_new, held_old = held["own"], held["old"]
    meta["metrics_heldout"] = dict(held_new, store_seed=test_seed, spec=recipe)
    meta["metrics_heldout_default_spec"] = dict(held_old, store_seed=TEST_SEED, spec=SPEC)
    meta["gates"] = dict(
        nums,
        thresholds=dict(REAL_GATES, sim_f1_default_relabelled=MIN_HELDOUT_F1),
        reported_not_required=["sim_f1_own_recipe", "sim_f1_default_labels"],
        real_data="20 real HRTEM frames, msa-em/microscopy-seg-track (CC-BY-4.0); "
        "validation only (model selection), never trained on",
        benchmark="benchmarks/bench_segment_real.py",
    )
    if args.stage != "gate" or args.out:  # a judged candidate is not rewritten in place
        save_model(model.net, args.out if args.stage == "gate" else out, meta)
    if args.install:
        if not ok:
            print("not installed: a gate failed (see 'gates' above)", flush=True)
            return 1
        dest = REPO / "src" / "napari_interfaces" / "weights"
        save_model(model.net, dest / f"{DEFAULT_MODEL}.pt", meta)
        print(f"installed into {dest}")
    return 0


def _train_stage3(
    args, parent, init, recipe, train_db, out, n_train, t_db, rehearsal_db=None
) -> dict:
    """Fine-tune ``parent`` on ``train_db`` (+ ``rehearsal_db``); the candidate's metadata.

    With rehearsal, the first ``n_train`` samples of the recipe's store and
    the first ``args.rehearsal`` of the relabelled ``hrtem_default`` store
    are shuffled together (the validation split is taken from each).
    """
    from napari_interfaces.core.progress import cli_progress
    from napari_interfaces.segment.models import DEFAULT_MODEL, load_model
    from napari_interfaces.segment.train import TrainConfig, train

    train_seed = RECIPES[recipe][0]
    base = REALISTIC_FULL_SCALE_SETTINGS if args.realistic_scale == "full" else REALISTIC_SETTINGS
    settings = dict(
        base,
        threads=args.threads,
        epochs=args.realistic_epochs,
        patience=args.realistic_epochs,
        init=str(parent.path),
        max_samples=n_train,
    )
    data = train_db
    if rehearsal_db is not None:  # each store capped by its own count
        settings["max_samples"] = None
        data = [(train_db, n_train), (rehearsal_db, args.rehearsal)]
    result = train(
        data,
        out,
        TrainConfig(**settings),
        progress=cli_progress(),
        description="default HRTEM nanoparticle model (Au on a-C, 300 kV, 0.2 Å/px; "
        "realistic instrument ranges, microscopist-like boundaries; robust to a pixel size "
        "wrong by 0.5-2x)",
    )
    print(f"stage 3: best validation {result.best}", flush=True)
    meta = dict(load_model(out).metadata)
    meta["training"]["database_seconds"] = round(t_db, 1)
    rehearsal = f"--rehearsal {args.rehearsal} " if rehearsal_db is not None else ""
    meta["training"]["command"] = (
        f"python scripts/train_default_unet.py --stage realistic --recipe {recipe} "
        f"--realistic-epochs {args.realistic_epochs} --realistic-n {n_train} "
        f"--realistic-scale {args.realistic_scale} {rehearsal}--threads {args.threads} "
        f"--workers {args.workers} --device {args.device} --install"
    )
    pm = parent.metadata
    meta["training"]["stages"] = [
        *((pm.get("training") or {}).get("stages") or []),
        {
            "stage": "2 (previous shipped model)",
            "model": DEFAULT_MODEL,
            "sha256": pm.get("sha256"),
            "settings": (pm.get("training") or {}).get("settings"),
            "metrics_heldout": pm.get("metrics_heldout"),
        },
    ]
    data = f"spec {recipe} seed {train_seed} n {n_train} device {args.device}"
    if rehearsal_db is not None:
        from napari_interfaces.simulate.spec import load_spec

        margin = float(load_spec(recipe).parameters.get("label_margin", 0.0))
        meta["training"]["rehearsal"] = {
            "spec": SPEC,
            "seed": TRAIN_SEED,
            "n": args.rehearsal,
            "label_margin": margin,
            "store": str(rehearsal_db),
            "why": f"the parent's own training images ({SPEC} seed {TRAIN_SEED}) with the "
            "recipe's label boundary, so the old physics is not forgotten",
        }
        data = [
            data,
            f"spec {SPEC} seed {TRAIN_SEED} n {args.rehearsal} label_margin {margin:g} "
            f"device {args.device} (rehearsal)",
        ]
    meta["lineage"] = {
        "parent": DEFAULT_MODEL if init == "default" else Path(str(init)).stem,
        "parent_sha256": pm.get("sha256"),
        "data": data,
    }
    return meta


if __name__ == "__main__":
    sys.exit(main())
