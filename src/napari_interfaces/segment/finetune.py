"""Fine-tuning a model on corrected labels (transfer learning).

The user segments a micrograph, corrects the Labels (in napari) and
fine-tunes: :func:`finetune` trains the model a few epochs on the corrected
``(image, labels)`` pairs — random crops with dihedral augmentation, the
encoder optionally frozen (its batch-norm statistics kept) — and saves the
result as a **new** model version next to the user's models, with its
lineage (base model and its checksum, the data, the settings). Batch-norm
layers keep the base model's statistics (a handful of crops of one image
would otherwise replace them). The base model is never modified.

:func:`finetune_folder` is the few-shot path from a folder of corrected
frames (the ``train`` command given a base model and two folders):
images and same-named label images (label > 0 = particle), each
image brought to the model's pixel size exactly as inference would (its
file's pixel size, else the lattice-fringe estimate, else the model's
own), a band of every image held out for validation (so every frame trains
and every frame validates), early stopping keeps the best epoch.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, ParameterError
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from ..io.micrograph import LOSSLESS_SUFFIXES
from .inference import PIXEL_SIZE_RANGE

__all__ = [
    "FOLDER_DEFAULTS",
    "FinetuneFolderParams",
    "FinetuneParams",
    "finetune",
    "finetune_folder",
    "read_folder_pairs",
]

#: Image file suffixes :func:`read_folder_pairs` reads (lossless: label images are exact).
IMAGE_SUFFIXES = LOSSLESS_SUFFIXES


def _to_model_grid(image, labels, scale: float):
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float32)
    labels = np.asarray(labels)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        image = image[..., :3].mean(-1)
    if image.shape != labels.shape:
        raise ValueError(f"image {image.shape} and labels {labels.shape} differ in shape")
    if scale != 1.0:
        zoom = (
            round(image.shape[0] * scale) / image.shape[0],
            round(image.shape[1] * scale) / image.shape[1],
        )
        image = ndimage.zoom(image, zoom, order=1, prefilter=False, mode="nearest")
        labels = ndimage.zoom(labels, zoom, order=0, prefilter=False, mode="nearest")
    return image, labels


@dataclass(frozen=True)
class FinetuneParams(Spec):
    """Fine-tuning on corrected labels (:func:`finetune`)."""

    pixel_size: float | None = param(
        None,
        "pixel size of the images; they are resampled to the model's (unknown: the model's own)",
        unit="Å",
        lo=PIXEL_SIZE_RANGE[0],
        hi=PIXEL_SIZE_RANGE[1],
        none="unknown",
        step=0.001,
    )
    epochs: int = param(5, "passes over random crops of the corrected images", lo=1, hi=100000)
    freeze_encoder: bool = param(
        True,
        "train the decoder only (recommended with one or a few images)",
        label="freeze encoder",
    )
    lr: float = param(1e-3, "AdamW learning rate", lo=0, lo_open=True, hi=10, advanced=True)
    crop: int = param(
        256,
        "random crop side (a multiple of 32)",
        unit="px",
        lo=32,
        hi=16384,
        step=32,
        advanced=True,
    )
    batch_size: int = param(4, "crops per training step", lo=1, hi=4096, advanced=True)
    crops_per_epoch: int = param(
        32, "random crops drawn per epoch (over all images)", lo=1, hi=100000, advanced=True
    )
    patience: int | None = param(
        None,
        "early stopping: epochs without a better validation F1 (auto: epochs)",
        lo=1,
        none="auto",
        advanced=True,
    )
    freeze_batchnorm: bool = param(
        True, "keep the base model's batch-norm statistics", advanced=True
    )
    seed: int = param(0, "seed of every random generator", lo=0, advanced=True)
    threads: int | None = param(
        1,
        "CPU threads for torch (auto: leave torch's setting)",
        lo=1,
        hi=1024,
        none="auto",
        advanced=True,
    )

    def check(self) -> None:
        if self.crop % 32:
            raise ParameterError("crop", f"must be a multiple of 32, got {self.crop}")


def finetune(
    model,
    pairs,
    params: FinetuneParams | None = None,
    *,
    out: str | Path | None = None,
    data_description: str = "",
    progress: Progress | None = None,
    val_pairs=None,
    pixel_sizes=None,
    info: dict | None = None,
    lineage: dict | None = None,
    **values: Any,
):
    """Fine-tune ``model`` on corrected ``(image, labels)`` pairs; save a new version.

    Parameters
    ----------
    model : LoadedModel, name or path
        The base model (unchanged).
    pairs : sequence of (image, labels)
        Corrected data; labels use the model's classes (0 = background;
        values above the last class are clipped).
    params : FinetuneParams, optional
        The settings (validated); ``values`` are applied on top of it (or of
        the defaults): ``pixel_size`` (Å/px of the images; they are resampled
        to the model's), ``epochs``, ``freeze_encoder`` (train the decoder
        only: recommended with few images), ``lr``, ``crop``, ``batch_size``,
        ``crops_per_epoch`` (random crops per epoch over all pairs),
        ``patience`` (early stopping, default ``epochs``), ``freeze_batchnorm``
        (keep the base model's batch-norm statistics), ``seed``, ``threads``.
    out : path, optional
        Where to save (default: a new ``*_vN.pt`` in the user models folder).
    data_description : str
        Stored in the lineage (e.g. the layer / file names).
    val_pairs : sequence of (image, labels), optional
        Held-out validation pairs: the epoch with the best validation F1 is
        kept and training stops after ``patience`` epochs without a better
        one (without them the training loss decides, no early stop).
    pixel_sizes : sequence of float or None, optional
        Per-pair pixel sizes (Å/px), overriding ``pixel_size`` (the
        validation pairs follow the training pairs in this list).
    info : dict, optional
        Filled with ``best_epoch``, ``best`` and ``history``.
    lineage : dict, optional
        Further entries of the new model's ``lineage`` metadata (e.g. the
        pixel size each frame was trained at and where it came from).

    Returns
    -------
    (LoadedModel, Path)
        The fine-tuned model (eval mode) and its ``.pt`` path.
    """
    import copy

    from .inference import rescale_factor
    from .models import LoadedModel, load_model, next_version_path, save_model
    from .train import ArrayDataset, TrainConfig, fit

    p = FinetuneParams.of(params, **values)
    pixel_size, epochs, crop, seed = p.pixel_size, p.epochs, p.crop, p.seed
    progress = as_progress(progress)
    base = model if isinstance(model, LoadedModel) else load_model(model)
    pairs = list(pairs)
    if not pairs:
        raise ValueError("fine-tuning needs at least one corrected (image, labels) pair")
    val_pairs = list(val_pairs or [])
    sizes = list(pixel_sizes) if pixel_sizes is not None else []
    sizes += [pixel_size] * (len(pairs) + len(val_pairs) - len(sizes))
    n_classes = base.n_classes

    def prep(pair, ps):
        img, lab = _to_model_grid(*pair, rescale_factor(ps, base.pixel_size))
        return img, np.clip(lab, 0, n_classes - 1).astype(np.int64)

    data = [prep(pr, ps) for pr, ps in zip(pairs, sizes, strict=False)]
    val = [prep(pr, ps) for pr, ps in zip(val_pairs, sizes[len(pairs) :], strict=False)]
    multiple = getattr(base.net, "multiple", 32)
    side = min(min(img.shape) for img, _ in data)
    crop_eff = int(min(crop, max(multiple, side // multiple * multiple)))
    repeats = max(1, int(np.ceil(p.crops_per_epoch / len(data))))
    train_set = ArrayDataset(
        data,
        crop=crop_eff,
        augment=True,
        seed=seed,
        repeats=repeats,
        normalization=base.normalization,
    )
    val_set = None
    if val:
        # held-out regions cut into equal tiles (the loader batches them), as
        # large as the smallest region allows, at most the training crop
        t = min(min(img.shape) for img, _ in val) // multiple * multiple
        t = min(t, crop_eff)
        tiles = []
        if t >= multiple:
            from .train import normalize_image

            for img, lab in val:
                # normalized as a whole region (as inference normalizes a whole image),
                # not per tile: a tile inside a particle would be skewed
                img = normalize_image(img, base.normalization)
                for y in range(0, img.shape[0] - t + 1, t):
                    for x in range(0, img.shape[1] - t + 1, t):
                        tiles.append((img[y : y + t, x : x + t], lab[y : y + t, x : x + t]))
        if tiles:
            val_set = ArrayDataset(
                tiles, crop=None, augment=False, seed=seed, normalization="none"
            )
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=p.batch_size,
        lr=p.lr,
        crop=crop_eff,
        val_fraction=0.0,
        patience=p.patience or epochs,
        width=base.net.config.width,
        blocks=tuple(base.net.config.blocks),
        n_classes=n_classes,
        device=str(next(base.net.parameters()).device),
        deterministic=True,
        seed=seed,
        threads=p.threads,
        freeze_encoder=p.freeze_encoder,
        freeze_batchnorm=p.freeze_batchnorm,
    )
    net = copy.deepcopy(base.net)
    result = fit(net, train_set, val_set, cfg, n_classes, progress=progress)
    if info is not None:
        info.update(
            best_epoch=result.best.get("epoch"),
            best=result.best,
            history=result.history,
            stopped_early=result.stopped_early,
            seconds=round(result.seconds, 1),
        )
    meta: dict[str, Any] = {
        k: v
        for k, v in base.metadata.items()
        if k not in ("sha256", "created", "name", "format", "format_version")
    }
    meta["description"] = (
        f"fine-tuned from {base.name or 'a model'} on {len(pairs)} corrected image(s)"
    )
    meta["lineage"] = {
        "parent": base.name or (str(base.path) if base.path else None),
        "parent_sha256": base.metadata.get("sha256"),
        "parent_lineage": base.metadata.get("lineage"),
        "data": data_description or f"{len(pairs)} corrected image(s)",
        "n_images": len(pairs),
        "pixels": int(sum(img.size for img, _ in data)),
        "settings": cfg.to_dict(),
        "finetuned": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **(lineage or {}),
    }
    meta["training"] = {
        "history": result.history,
        "seconds": round(result.seconds, 1),
        "best": result.best,
        "n_validation": len(val),
    }
    meta.pop("metrics", None)
    meta.pop("metrics_heldout", None)
    path = Path(out) if out else next_version_path(base.name or "default")
    path = save_model(net, path, meta)
    new = load_model(path, device=str(next(base.net.parameters()).device))
    return new, path


#: Defaults of :func:`finetune_folder` (measured: a few minutes for 5 frames of
#: 512² on 2 CPU cores; see docs/benchmarks.md, "few-shot fine-tuning").
FOLDER_DEFAULTS = dict(
    epochs=12,
    lr=5e-4,
    crop=256,
    batch_size=4,
    crops_per_epoch=24,
    patience=4,
    val_band=0.2,
    freeze_encoder=False,
    freeze_batchnorm=True,
)


def _read_any(path: Path):
    from ..io.micrograph import read_micrograph

    return read_micrograph(path)


def read_folder_pairs(images: str | Path, labels: str | Path):
    """``[(name, image float32, labels uint8 (0/1), pixel size or None)]`` from two folders.

    Every PNG/TIFF in ``images`` needs a label image of the same stem (any of
    those suffixes) in ``labels``; label > 0 is particle. Colour images are
    averaged to grey; a colour label image counts any non-black pixel.

    Raises
    ------
    InputError
        A missing folder, no images, a missing or differently sized label image
        (naming the file).
    """
    images, labels = Path(images), Path(labels)
    for name, d in (("images", images), ("labels", labels)):
        if not d.is_dir():
            raise ParameterError(name, f"{d}: no such folder")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ParameterError("images", f"{images}: no PNG/TIFF images in the folder")
    by_stem = {}
    for p in labels.iterdir():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(p.stem, p)
    out = []
    for f in files:
        lp = by_stem.get(f.stem)
        if lp is None:
            raise ParameterError(
                "labels", f"{labels}: no label image for {f.name} (same name needed)"
            )
        mic = _read_any(f)
        lab = np.asarray(_read_any(lp).data)
        if lab.ndim == 3:
            lab = lab[..., :3].max(-1)
        img = mic.gray
        if lab.shape != img.shape:
            raise InputError(
                f"{lp}: label image {lab.shape[1]}x{lab.shape[0]} differs from "
                f"{f.name} {img.shape[1]}x{img.shape[0]}"
            )
        out.append((f.name, img, (lab > 0).astype(np.uint8), mic.pixel_size))
    return out


@dataclass(frozen=True)
class FinetuneFolderParams(FinetuneParams):
    """Few-shot fine-tuning from a folder of corrected frames (:func:`finetune_folder`)."""

    pixel_size: float | None = param(
        None,
        "pixel size of the frames (unknown: each file's, else estimated from lattice fringes "
        "and the particle size, else the model's)",
        unit="Å",
        lo=PIXEL_SIZE_RANGE[0],
        hi=PIXEL_SIZE_RANGE[1],
        none="unknown",
        step=0.001,
    )
    epochs: int = param(FOLDER_DEFAULTS["epochs"], "maximum number of epochs", lo=1, hi=100000)
    freeze_encoder: bool = param(
        FOLDER_DEFAULTS["freeze_encoder"], "train the decoder only", advanced=True
    )
    lr: float = param(FOLDER_DEFAULTS["lr"], "AdamW learning rate", lo=0, lo_open=True, hi=10)
    crop: int = param(
        FOLDER_DEFAULTS["crop"],
        "random crop side at the model's pixel size (a multiple of 32)",
        unit="px",
        lo=32,
        hi=16384,
        step=32,
    )
    batch_size: int = param(
        FOLDER_DEFAULTS["batch_size"], "crops per training step", lo=1, hi=4096
    )
    crops_per_epoch: int = param(
        FOLDER_DEFAULTS["crops_per_epoch"],
        "random crops drawn per epoch (over all frames)",
        lo=1,
        hi=100000,
    )
    patience: int | None = param(
        FOLDER_DEFAULTS["patience"],
        "early stopping: epochs without a better held-out F1 (auto: epochs)",
        lo=1,
        none="auto",
    )
    freeze_batchnorm: bool = param(
        FOLDER_DEFAULTS["freeze_batchnorm"],
        "keep the base model's batch-norm statistics",
        advanced=True,
    )
    threads: int | None = param(
        2, "CPU threads for torch (auto: leave torch's setting)", lo=1, hi=1024, none="auto"
    )
    val_band: float = param(
        FOLDER_DEFAULTS["val_band"],
        "share of every frame's rows (the bottom band) held out for validation",
        lo=0,
        hi=0.9,
        hi_open=True,
    )


def finetune_folder(
    model,
    images: str | Path,
    labels: str | Path,
    out: str | Path | None = None,
    params: FinetuneFolderParams | None = None,
    *,
    progress: Progress | None = None,
    **values: Any,
):
    """Few-shot fine-tuning from a folder of corrected frames; save a new model.

    Parameters
    ----------
    model : LoadedModel, name or path
        The base model (``"default"``: the shipped one); unchanged.
    images, labels : path
        Folders of images and same-named label images (PNG/TIFF, label > 0
        = particle), see :func:`read_folder_pairs`.
    out : path, optional
        The new model's ``.pt`` (default: a new version in the user models folder).
    params : FinetuneFolderParams, optional
        The settings (validated); ``values`` are applied on top of it (or of
        the defaults). ``pixel_size``: Å/px of all images; default: each
        file's own, else estimated from the lattice fringes and the particle
        size, else the model's (:func:`~.inference.image_pixel_size`: exactly
        what :func:`~.inference.segment_image` will use on the same image).
        ``val_band``: share of every image's rows (the bottom band) held out
        for validation. The others as in :func:`finetune` (crops of
        ``crop`` px at the model's pixel size).
    progress : Progress, optional

    Returns
    -------
    (LoadedModel, Path, dict)
        The fine-tuned model, its path and a summary (images, pixel sizes
        used per frame with their source, ``"given"`` (``pixel_size`` or
        the file's), ``"estimated"`` (with the ``cue`` that decided, its
        ``probability`` and a one-line ``estimate``) or ``"assumed"``, also
        in the new model's lineage; best epoch, validation F1 before/after).
    """
    from .inference import image_pixel_size
    from .models import LoadedModel, load_model

    p = FinetuneFolderParams.of(params, **values)
    pixel_size, val_band = p.pixel_size, p.val_band
    base = model if isinstance(model, LoadedModel) else load_model(model)
    rows = read_folder_pairs(images, labels)
    if p.threads and next(base.net.parameters()).device.type == "cpu":
        import torch

        torch.set_num_threads(int(p.threads))  # the estimate's passes too, as fit() will
    train_pairs, val_pairs, train_ps, val_ps, used = [], [], [], [], []
    for name, img, lab, file_ps in rows:
        # the rule segment_image applies to the same frame (fringes + particle size)
        ps, source, est = image_pixel_size(
            img, base, pixel_size=pixel_size or file_ps, progress=progress
        )
        row = {"image": name, "pixel_size": round(ps, 4), "source": source}
        if source == "estimated" and est is not None:
            row["cue"] = est.cue
            row["estimate"] = est.describe()
            row["probability"] = None if est.probability is None else round(est.probability, 3)
        elif est is not None:
            row["estimate"] = est.describe()  # why none was made
        used.append(row)
        h = img.shape[0]
        cut = h - int(round(h * val_band)) if val_band > 0 else h
        train_pairs.append((img[:cut], lab[:cut]))
        train_ps.append(ps)
        if cut < h:
            val_pairs.append((img[cut:], lab[cut:]))
            val_ps.append(ps)
    info: dict = {"n_images": len(rows), "pixel_sizes": used}
    new, path = finetune(
        base,
        train_pairs,
        FinetuneParams(
            **{k: v for k, v in p.to_dict().items() if k not in ("val_band", "pixel_size")}
        ),
        out=out,
        data_description=f"{len(rows)} frame(s) from {images} (labels {labels}); "
        f"bottom {val_band:.0%} of each held out for validation",
        progress=progress,
        val_pairs=val_pairs,
        pixel_sizes=train_ps + val_ps,
        info=info,
        lineage={"pixel_sizes": used},
    )
    hist = info.get("history") or []
    info["validation_f1"] = info.get("best", {}).get("f1")
    info["validation_f1_first_epoch"] = hist[0].get("f1") if hist else None
    return new, path, info
