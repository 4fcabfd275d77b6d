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
frames (``napari-interfaces train --init default --images DIR --labels
DIR``): images and same-named label images (label > 0 = particle), each
image brought to the model's pixel size exactly as inference would (its
file's pixel size, else the lattice-fringe estimate, else the model's
own), a band of every image held out for validation (so every frame trains
and every frame validates), early stopping keeps the best epoch.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress
from ..io.micrograph import LOSSLESS_SUFFIXES

__all__ = ["FOLDER_DEFAULTS", "finetune", "finetune_folder", "read_folder_pairs"]

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


def finetune(
    model,
    pairs,
    pixel_size: float | None = None,
    epochs: int = 5,
    freeze_encoder: bool = True,
    lr: float = 1e-3,
    crop: int = 256,
    batch_size: int = 4,
    crops_per_epoch: int = 32,
    out: str | Path | None = None,
    data_description: str = "",
    seed: int = 0,
    threads: int | None = 1,
    progress: Progress | None = None,
    val_pairs=None,
    patience: int | None = None,
    freeze_batchnorm: bool = True,
    pixel_sizes=None,
    info: dict | None = None,
):
    """Fine-tune ``model`` on corrected ``(image, labels)`` pairs; save a new version.

    Parameters
    ----------
    model : LoadedModel, name or path
        The base model (unchanged).
    pairs : sequence of (image, labels)
        Corrected data; labels use the model's classes (0 = background;
        values above the last class are clipped).
    pixel_size : float, optional
        Å/px of the images; they are resampled to the model's pixel size.
    epochs : int
    freeze_encoder : bool
        Train the decoder only (recommended with few images).
    lr, crop, batch_size : training settings
    crops_per_epoch : int
        Random crops drawn per epoch (over all pairs).
    out : path, optional
        Where to save (default: a new ``*_vN.pt`` in the user models folder).
    data_description : str
        Stored in the lineage (e.g. the layer / file names).
    val_pairs : sequence of (image, labels), optional
        Held-out validation pairs: the epoch with the best validation F1 is
        kept and training stops after ``patience`` epochs without a better
        one (without them the training loss decides, no early stop).
    patience : int, optional
        Early-stopping patience (default: ``epochs``).
    freeze_batchnorm : bool
        Keep the base model's batch-norm statistics.
    pixel_sizes : sequence of float or None, optional
        Per-pair pixel sizes (Å/px), overriding ``pixel_size`` (the
        validation pairs follow the training pairs in this list).
    info : dict, optional
        Filled with ``best_epoch``, ``best`` and ``history``.

    Returns
    -------
    (LoadedModel, Path)
        The fine-tuned model (eval mode) and its ``.pt`` path.
    """
    import copy

    from .inference import rescale_factor
    from .models import LoadedModel, load_model, next_version_path, save_model
    from .train import ArrayDataset, TrainConfig, fit

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
    repeats = max(1, int(np.ceil(crops_per_epoch / len(data))))
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
        batch_size=batch_size,
        lr=lr,
        crop=crop_eff,
        val_fraction=0.0,
        patience=patience or epochs,
        width=base.net.config.width,
        blocks=tuple(base.net.config.blocks),
        n_classes=n_classes,
        device=str(next(base.net.parameters()).device),
        deterministic=True,
        seed=seed,
        threads=threads,
        freeze_encoder=freeze_encoder,
        freeze_batchnorm=freeze_batchnorm,
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
    from ..core.errors import InputError

    images, labels = Path(images), Path(labels)
    for flag, d in (("--images", images), ("--labels", labels)):
        if not d.is_dir():
            raise InputError(f"{flag} {d}: no such folder")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"--images {images}: no PNG/TIFF images in the folder")
    by_stem = {}
    for p in labels.iterdir():
        if p.suffix.lower() in IMAGE_SUFFIXES:
            by_stem.setdefault(p.stem, p)
    out = []
    for f in files:
        lp = by_stem.get(f.stem)
        if lp is None:
            raise InputError(f"--labels {labels}: no label image for {f.name} (same name needed)")
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


def finetune_folder(
    model,
    images: str | Path,
    labels: str | Path,
    out: str | Path | None = None,
    pixel_size: float | None = None,
    epochs: int = FOLDER_DEFAULTS["epochs"],
    lr: float = FOLDER_DEFAULTS["lr"],
    crop: int = FOLDER_DEFAULTS["crop"],
    batch_size: int = FOLDER_DEFAULTS["batch_size"],
    crops_per_epoch: int = FOLDER_DEFAULTS["crops_per_epoch"],
    patience: int = FOLDER_DEFAULTS["patience"],
    val_band: float = FOLDER_DEFAULTS["val_band"],
    freeze_encoder: bool = FOLDER_DEFAULTS["freeze_encoder"],
    freeze_batchnorm: bool = FOLDER_DEFAULTS["freeze_batchnorm"],
    seed: int = 0,
    threads: int | None = 2,
    progress: Progress | None = None,
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
    pixel_size : float, optional
        Å/px of all images. Default: each file's own, else estimated from
        lattice fringes, else the model's (exactly what
        :func:`~.inference.segment_image` will use on the same image).
    epochs, lr, crop, batch_size, crops_per_epoch, patience
        Training settings (crops of ``crop`` px at the model's pixel size).
    val_band : float
        Share of every image's rows (the bottom band) held out for validation.
    freeze_encoder, freeze_batchnorm : bool
    seed, threads, progress

    Returns
    -------
    (LoadedModel, Path, dict)
        The fine-tuned model, its path and a summary (images, pixel sizes
        used, best epoch, validation F1 before/after).
    """
    from ..core.errors import ParameterError
    from .inference import resolve_pixel_size
    from .models import LoadedModel, load_model

    if not 0.0 <= val_band < 0.9:
        raise ParameterError("val_band", f"must be in [0, 0.9), got {val_band}")
    base = model if isinstance(model, LoadedModel) else load_model(model)
    rows = read_folder_pairs(images, labels)
    train_pairs, val_pairs, train_ps, val_ps, used = [], [], [], [], []
    for name, img, lab, file_ps in rows:
        ps, source, _ = resolve_pixel_size(img, pixel_size or file_ps, base.pixel_size)
        used.append({"image": name, "pixel_size": round(ps, 4), "source": source})
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
        epochs=epochs,
        freeze_encoder=freeze_encoder,
        lr=lr,
        crop=crop,
        batch_size=batch_size,
        crops_per_epoch=crops_per_epoch,
        out=out,
        data_description=f"{len(rows)} frame(s) from {images} (labels {labels}); "
        f"bottom {val_band:.0%} of each held out for validation",
        seed=seed,
        threads=threads,
        progress=progress,
        val_pairs=val_pairs,
        patience=patience,
        freeze_batchnorm=freeze_batchnorm,
        pixel_sizes=train_ps + val_ps,
        info=info,
    )
    hist = info.get("history") or []
    info["validation_f1"] = info.get("best", {}).get("f1")
    info["validation_f1_first_epoch"] = hist[0].get("f1") if hist else None
    return new, path, info
