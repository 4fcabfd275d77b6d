"""Fine-tuning a model on corrected labels (transfer learning).

The user segments a micrograph, corrects the Labels (in napari) and
fine-tunes: :func:`finetune` trains the model a few epochs on the corrected
``(image, labels)`` pairs — random crops with dihedral augmentation, the
encoder optionally frozen (its batch-norm statistics kept) — and saves the
result as a **new** model version next to the user's models, with its
lineage (base model and its checksum, the data, the settings). Batch-norm
layers keep the base model's statistics (a handful of crops of one image
would otherwise replace them). The base model is never modified.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np

from ..core.progress import Progress, as_progress

__all__ = ["finetune"]


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
    scale = rescale_factor(pixel_size, base.pixel_size)
    data = [_to_model_grid(img, lab, scale) for img, lab in pairs]
    n_classes = base.n_classes
    data = [(img, np.clip(lab, 0, n_classes - 1).astype(np.int64)) for img, lab in data]
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
    cfg = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        crop=crop_eff,
        val_fraction=0.0,
        patience=epochs,
        width=base.net.config.width,
        blocks=tuple(base.net.config.blocks),
        n_classes=n_classes,
        device=str(next(base.net.parameters()).device),
        deterministic=True,
        seed=seed,
        threads=threads,
        freeze_encoder=freeze_encoder,
        freeze_batchnorm=True,
    )
    net = copy.deepcopy(base.net)
    result = fit(net, train_set, None, cfg, n_classes, progress=progress)
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
    meta["training"] = {"history": result.history, "seconds": round(result.seconds, 1)}
    meta.pop("metrics", None)
    meta.pop("metrics_heldout", None)
    path = Path(out) if out else next_version_path(base.name or "default")
    path = save_model(net, path, meta)
    new = load_model(path, device=str(next(base.net.parameters()).device))
    return new, path
