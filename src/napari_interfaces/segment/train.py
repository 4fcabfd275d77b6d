"""Training of the segmentation U-Net on a simulated database (zarr store).

The store is read lazily, one sample per chunk (see
:mod:`napari_interfaces.simulate.database`). Each sample is normalized per
image (:func:`normalize_image`, the same function inference uses), cropped at
random to ``crop`` pixels and augmented with a random dihedral transform.
The loss is cross-entropy + soft Dice (:class:`~.losses.CEDiceLoss`); the
model with the best validation F1 is checkpointed, training stops early after
``patience`` epochs without improvement, and a resumable checkpoint
(``MODEL.pt.ckpt``: weights, optimizer, epoch, history) is written every
epoch.

Several stores can be trained on together (rehearsal: a new database plus
an old one, so fine-tuning keeps what the old one taught): samples are drawn
from all of them and the validation split is taken from each.

Deterministic mode seeds every generator, uses deterministic torch
algorithms and single-process data loading: two runs with the same settings
give the same weights on the same machine.

Examples
--------
Train a tiny model on a store made by ``napari-interfaces simulate database``::

    from napari_interfaces.segment.train import TrainConfig, train
    result = train("db.zarr", "model.pt", TrainConfig(epochs=5, width=8))
    result = train("db.zarr", "model.pt", epochs=5, width=8)  # the same
    result = train(["new.zarr", ("old.zarr", 100)], "model.pt", epochs=5)  # two stores
    print(result.best["f1"])
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ParameterError
from ..core.progress import Progress, as_progress
from ..core.spec import Spec, param
from ..nets.device import resolve_device

__all__ = [
    "ArrayDataset",
    "TrainConfig",
    "TrainFiles",
    "TrainResult",
    "ZarrDataset",
    "evaluate",
    "fit",
    "normalize_image",
    "resolve_device",
    "train",
]


def normalize_image(image: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Per-image normalization used in training and inference (float32).

    ``zscore``: subtract the mean and divide by the standard deviation of the
    whole image, after clipping the 0.1 % / 99.9 % percentiles (dead or hot
    pixels then do not dominate).
    """
    img = np.asarray(image, dtype=np.float32)
    if method == "none":
        return img
    if method != "zscore":
        raise ValueError(f"unknown normalization {method!r} (use 'zscore' or 'none')")
    sample = img[:: max(1, img.shape[0] // 512), :: max(1, img.shape[-1] // 512)]
    lo, hi = np.percentile(sample, [0.1, 99.9])
    img = np.clip(img, lo, hi)
    mean = float(img.mean(dtype=np.float64))
    std = float(img.std(dtype=np.float64))
    return ((img - mean) / (std if std > 1e-12 else 1.0)).astype(np.float32, copy=False)


@dataclass(frozen=True)
class TrainConfig(Spec):
    """Training of the U-Net on a database store (:func:`train`; stored in the model's metadata).

    ``lr`` decays by a cosine to 5 % over ``epochs``; ``val_fraction`` holds
    out the last samples; ``freeze_encoder`` trains the decoder only and
    ``freeze_batchnorm`` keeps every batch-norm layer in eval mode (the base
    model's running statistics; fine-tuning on few images).
    ``scale_range``: each training crop is magnified by a log-uniform factor
    in this range (see :func:`~.augment.random_scale_crop`), so the model
    tolerates a pixel size wrong by that factor; validation crops get a fixed
    factor per sample from the same range when ``val_scale`` (robustness
    decides which epoch is kept), else the database's own pixel size
    (accuracy at the right pixel size decides). ``degrade_prob``: share of
    training images blurred as a coarser sampling would (see
    :func:`~.augment.degrade_resolution`), by a factor in ``degrade_range``.
    ``init``: start from this model's weights (its architecture must match
    ``width`` / ``blocks``).
    """

    epochs: int = param(20, "maximum number of epochs", lo=1, hi=100000)
    batch_size: int = param(8, "images per training step", lo=1, hi=4096)
    lr: float = param(2e-3, "AdamW learning rate (cosine decay to 5%)", lo=0, lo_open=True, hi=10)
    crop: int | None = param(
        256,
        "random crop side, a multiple of 32 (0 or whole: whole samples)",
        unit="px",
        lo=0,
        hi=16384,
        none="whole",
    )
    val_fraction: float = param(
        0.1,
        "share of the samples held out for validation (the last ones)",
        lo=0,
        hi=1,
        hi_open=True,
    )
    patience: int = param(5, "early stopping: epochs without a better validation F1", lo=1)
    width: int = param(16, "channels of the first U-Net stage", lo=1, hi=512)
    max_samples: int | None = param(
        None, "use only the first N completed samples (of each store)", lo=1, none="all"
    )
    scale_range: tuple[float, ...] | None = param(
        None,
        "scale augmentation: magnify crops by a log-uniform factor in [LO, HI] (e.g. 0.5 2: "
        "tolerate a pixel size wrong by up to 2x)",
        lo=0,
        lo_open=True,
        hi=10,
        none="off",
        nargs=2,
        metavar=("LO", "HI"),
    )
    degrade_prob: float = param(
        0.0, "share of images blurred as a 1-8x coarser sampling would", lo=0, hi=1
    )
    init: str | None = param(
        None, "start from this model's weights (a path or model name; fine-tune)", none="random"
    )
    device: str = param("auto", "torch device: auto, cpu, cuda, cuda:N")
    threads: int | None = param(
        2, "CPU threads for torch (auto: leave torch's setting)", lo=1, hi=1024, none="auto"
    )
    seed: int = param(0, "seed of every random generator", lo=0)
    deterministic: bool = param(
        True, "seed everything and use deterministic kernels", advanced=True
    )
    weight_decay: float = param(1e-4, "AdamW weight decay", lo=0, hi=1, cli=False, advanced=True)
    blocks: tuple[int, ...] = param(
        (2, 2, 2, 2),
        "residual blocks per U-Net stage",
        item=int,
        lo=1,
        hi=64,
        cli=False,
        advanced=True,
    )
    n_classes: int | None = param(
        None,
        "classes (auto: the store's class list)",
        lo=1,
        hi=256,
        none="auto",
        cli=False,
        advanced=True,
    )
    augment: bool = param(True, "random dihedral transforms", cli=False, advanced=True)
    freeze_encoder: bool = param(
        False, "train the decoder only (fine-tuning)", cli=False, advanced=True
    )
    freeze_batchnorm: bool = param(
        False, "keep the batch-norm statistics of the base model", cli=False, advanced=True
    )
    ce_weight: float = param(
        1.0, "weight of the cross-entropy loss", lo=0, cli=False, advanced=True
    )
    dice_weight: float = param(1.0, "weight of the Dice loss", lo=0, cli=False, advanced=True)
    scale_prob: float = param(
        1.0,
        "share of the crops that get the scale augmentation",
        lo=0,
        hi=1,
        cli=False,
        advanced=True,
    )
    degrade_range: tuple[float, ...] = param(
        (1.0, 8.0),
        "range of the coarsening factor of degrade_prob",
        lo=1,
        hi=100,
        cli=False,
        advanced=True,
    )
    val_scale: bool = param(
        True,
        "validate at fixed per-sample scales from scale_range (off: at the database's pixel size)",
        cli=False,
        advanced=True,
    )

    def check(self) -> None:
        if self.crop and self.crop % 32:
            raise ParameterError("crop", f"must be 0 or a multiple of 32, got {self.crop}")
        for name in ("scale_range", "degrade_range"):
            pair = getattr(self, name)
            if pair is None:
                continue
            if len(pair) != 2:
                raise ParameterError(name, f"give two values LO HI, got {len(pair)}")
            if pair[0] > pair[1]:
                raise ParameterError(name, f"LO must not exceed HI, got {pair[0]:g} {pair[1]:g}")

    @property
    def crop_side(self) -> int | None:
        """The crop side in px, ``None`` for whole samples (``crop`` 0 or ``None``)."""
        return self.crop or None


@dataclass(frozen=True)
class TrainFiles(Spec):
    """Files of ``train`` (a database store, or folders of corrected frames to fine-tune on)."""

    data: Path | None = param(None, "database zarr store", gui=False)
    images: Path | None = param(
        None,
        "folder of corrected frames (PNG/TIFF) to fine-tune on (needs labels and init)",
        gui=False,
    )
    labels: Path | None = param(
        None, "folder of label images named like the frames (label > 0 = particle)", gui=False
    )
    out: Path | None = param(None, "output model file, .pt (required)", gui=False)
    resume: bool = param(True, "continue from MODEL.pt.ckpt when it exists", gui=False)
    overwrite: bool = param(False, "replace an existing model", gui=False)
    quiet: bool = param(False, "no progress bar", gui=False)


@dataclass
class TrainResult:
    """What :func:`train` / :func:`fit` return."""

    path: Path | None
    best: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    images_per_second: float = 0.0
    stopped_early: bool = False


# -- datasets ----------------------------------------------------------------
class _CropMixin:
    crop: int | None
    augment: bool
    scale_range: tuple[float, float] | None = None
    scale_prob: float = 1.0
    degrade_prob: float = 0.0
    degrade_range: tuple[float, float] = (1.0, 8.0)
    fixed: bool = False  # validation: the same draw for an index every epoch
    stream: int = 0  # position of the store among several (independent draws per store)

    def _prepare(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        from .augment import degrade_resolution, random_dihedral, random_scale_crop

        if self.degrade_prob > 0 and rng.random() < self.degrade_prob:
            image = degrade_resolution(rng, image, self.degrade_range)
        image = normalize_image(image, self.normalization)
        if self.scale_range is not None and (
            self.scale_prob >= 1 or rng.random() < self.scale_prob
        ):
            c = int(self.crop) if self.crop is not None else min(image.shape)
            image, labels = random_scale_crop(rng, image, labels, c, self.scale_range)
        elif self.crop is not None:
            h, w = image.shape
            c = int(self.crop)
            if h < c or w < c:
                ph, pw = max(0, c - h), max(0, c - w)
                image = np.pad(image, ((0, ph), (0, pw)), mode="reflect")
                labels = np.pad(labels, ((0, ph), (0, pw)), mode="reflect")
                h, w = image.shape
            y0 = int(rng.integers(0, h - c + 1))
            x0 = int(rng.integers(0, w - c + 1))
            image = image[y0 : y0 + c, x0 : x0 + c]
            labels = labels[y0 : y0 + c, x0 : x0 + c]
        if self.augment:
            image, labels = random_dihedral(rng, image, labels)
        import torch

        return (
            torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)[None]),
            torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64)),
        )

    def _rng(self, index: int) -> np.random.Generator:
        extra = [self.stream] if self.stream else []  # the first store draws as a single one
        if self.fixed:
            return np.random.default_rng([self.seed, index, *extra])
        # a new draw per epoch and index, reproducible from the seed
        self._draws = getattr(self, "_draws", 0) + 1
        return np.random.default_rng([self.seed, index, self._draws, *extra])


class ZarrDataset(_CropMixin):
    """torch-style dataset over a database store, opened lazily per process.

    Parameters
    ----------
    store : path
        A store written by :func:`napari_interfaces.simulate.database.generate_database`.
    indices : sequence of int
        Samples to use (only completed samples should be given; see
        :func:`napari_interfaces.simulate.database.completed_indices`).
    crop : int or None
    augment : bool
    seed : int
    stream : int
        The store's position when several are trained on together: its random
        draws are independent of the other stores' (0: as a single store).
    """

    def __init__(
        self,
        store: str | Path,
        indices,
        crop: int | None = None,
        augment: bool = False,
        seed: int = 0,
        normalization: str = "zscore",
        scale_range: tuple[float, float] | None = None,
        degrade_prob: float = 0.0,
        degrade_range: tuple[float, float] = (1.0, 8.0),
        fixed: bool = False,
        scale_prob: float = 1.0,
        stream: int = 0,
    ) -> None:
        self.store = str(store)
        self.indices = [int(i) for i in indices]
        self.crop = crop
        self.augment = augment
        self.seed = seed
        self.normalization = normalization
        self.scale_range = tuple(scale_range) if scale_range is not None else None
        self.degrade_prob = float(degrade_prob)
        self.degrade_range = tuple(degrade_range)
        self.fixed = fixed
        self.scale_prob = float(scale_prob)
        self.stream = int(stream)
        self._group = None

    def __len__(self) -> int:
        return len(self.indices)

    def _arrays(self):
        if self._group is None:
            import zarr

            self._group = zarr.open_group(self.store, mode="r")
        return self._group["image"], self._group["labels"]

    def __getitem__(self, i: int):
        from ..simulate.database import read_arrays

        self._arrays()
        idx = self.indices[i]
        image, labels = read_arrays(self._group, self.store, idx)  # checked chunks and labels
        return self._prepare(image, labels, self._rng(idx))

    def __getstate__(self):  # picklable for DataLoader workers
        d = self.__dict__.copy()
        d["_group"] = None
        return d


class ArrayDataset(_CropMixin):
    """Dataset over in-memory ``(image, labels)`` pairs (fine-tuning)."""

    def __init__(
        self,
        pairs,
        crop: int | None = None,
        augment: bool = False,
        seed: int = 0,
        normalization: str = "zscore",
        repeats: int = 1,
    ) -> None:
        self.pairs = [(np.asarray(a), np.asarray(b)) for a, b in pairs]
        for a, b in self.pairs:
            if a.shape != b.shape or a.ndim != 2:
                raise ValueError(
                    f"image and labels must be 2D and of equal shape, got {a.shape} and {b.shape}"
                )
        self.crop = crop
        self.augment = augment
        self.seed = seed
        self.normalization = normalization
        self.repeats = max(1, int(repeats))

    def __len__(self) -> int:
        return len(self.pairs) * self.repeats

    def __getitem__(self, i: int):
        j = i % len(self.pairs)
        image, labels = self.pairs[j]
        return self._prepare(image, labels, self._rng(i))


# -- core loop -----------------------------------------------------------------
def _seed_everything(seed: int, deterministic: bool) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - third-party code may use it
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def _loader(dataset, batch_size: int, shuffle: bool, seed: int):
    import torch
    from torch.utils.data import DataLoader

    g = torch.Generator()
    g.manual_seed(seed)
    # training drops a last batch of one (batch norm needs two values per channel)
    drop_last = shuffle and len(dataset) % batch_size == 1 and len(dataset) > batch_size
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=0,
        generator=g,
        drop_last=drop_last,
    )


def evaluate(
    net, loader, n_classes: int, device=None, progress: Progress | None = None
) -> dict[str, Any]:
    """Pixel-wise F1 and IoU of ``net`` over a loader (micro-averaged)."""
    import torch

    from .metrics import ConfusionCounter

    device = device or next(net.parameters()).device
    counter = ConfusionCounter(n_classes)
    was_training = net.training
    net.eval()
    with torch.inference_mode():
        for x, y in loader:
            pred = net(x.to(device)).argmax(1).cpu().numpy()
            counter.update(pred, y.numpy())
            if progress is not None:
                progress.check()
    net.train(was_training)
    return counter.scores()


def fit(
    net,
    train_set,
    val_set,
    cfg: TrainConfig,
    n_classes: int,
    progress: Progress | None = None,
    checkpoint: str | Path | None = None,
    on_best=None,
) -> TrainResult:
    """Train ``net`` in place; keep the weights of the best validation F1.

    Parameters
    ----------
    net : UNet
    train_set, val_set : datasets (``val_set`` may be ``None``: then the
        training loss decides and no early stopping happens)
    cfg : TrainConfig
    n_classes : int
    progress : Progress, optional
        One step per training batch; cancellation raises ``Cancelled``
        (the best weights so far are already in ``net``... only at the end).
    checkpoint : path, optional
        Resumable checkpoint written after every epoch and resumed from
        when it exists.
    on_best : callable, optional
        ``on_best(net, record)`` after every improvement (saves the model).
    """
    import torch

    from .losses import CEDiceLoss

    progress = as_progress(progress)
    device = resolve_device(cfg.device)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(int(cfg.threads))
    _seed_everything(cfg.seed, cfg.deterministic)
    net.to(device).train()
    if cfg.freeze_encoder:
        for p in net.encoder.parameters():
            p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=max(1, cfg.epochs), eta_min=cfg.lr * 0.05
    )
    loss_fn = CEDiceLoss(cfg.ce_weight, cfg.dice_weight).to(device)
    train_loader = _loader(train_set, cfg.batch_size, True, cfg.seed)
    val_loader = (
        _loader(val_set, cfg.batch_size, False, cfg.seed)
        if val_set is not None and len(val_set)
        else None
    )

    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"f1": -1.0, "loss": float("inf"), "epoch": -1}
    best_state = copy.deepcopy(net.state_dict())
    start_epoch = 0
    ckpt = Path(checkpoint) if checkpoint else None
    if ckpt is not None and ckpt.is_file():
        (best_state, history, best, start_epoch) = _resume(ckpt, net, opt, sched, device)

    steps = len(train_loader)
    progress.start(max(0, cfg.epochs - start_epoch) * steps, "training")
    t0 = time.perf_counter()
    n_images = 0
    stopped_early = False
    bad_epochs = 0 if not history else (history[-1]["epoch"] - best["epoch"])
    for epoch in range(start_epoch, cfg.epochs):
        net.train()
        if cfg.freeze_encoder:
            net.encoder.eval()  # keep batch-norm statistics of the base model
        if cfg.freeze_batchnorm:
            for m in net.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        total = 0.0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * x.shape[0]
            n_images += x.shape[0]
            progress.advance(description=f"training: epoch {epoch + 1}/{cfg.epochs}")
        sched.step()
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": total / max(1, len(train_set)),
            "lr": opt.param_groups[0]["lr"],
        }
        if val_loader is not None:
            s = evaluate(net, val_loader, n_classes, device, progress)
            record.update(f1=s["f1"], iou=s["iou"])
            better = s["f1"] > best["f1"] + 1e-6
        else:
            better = record["train_loss"] < best["loss"]
        record["seconds"] = round(time.perf_counter() - t0, 2)
        history.append(record)
        if better:
            best = {
                "f1": record.get("f1", -1.0),
                "iou": record.get("iou"),
                "loss": record["train_loss"],
                "epoch": epoch,
            }
            best_state = copy.deepcopy(net.state_dict())
            bad_epochs = 0
            if on_best is not None:
                on_best(net, dict(best))
        else:
            bad_epochs += 1
        if ckpt is not None:
            from ..core.outputs import atomic_file

            with atomic_file(ckpt) as tmp:  # unpredictable, exclusive temp name
                torch.save(
                    {
                        "model": net.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "best_state": best_state,
                        "history": json.dumps(history),
                        "best": json.dumps(best),
                        "epoch": epoch,
                        "torch_rng": torch.get_rng_state(),
                    },
                    tmp,
                )
        if val_loader is not None and bad_epochs >= cfg.patience:
            stopped_early = True
            break
    net.load_state_dict(best_state)
    net.eval()
    if cfg.freeze_encoder:
        for p in net.encoder.parameters():
            p.requires_grad_(True)
    seconds = time.perf_counter() - t0
    return TrainResult(
        path=None,
        best=best,
        history=history,
        seconds=seconds,
        images_per_second=n_images / seconds if seconds > 0 else 0.0,
        stopped_early=stopped_early,
    )


def _resume(ckpt: Path, net, opt, sched, device) -> tuple[dict, list, dict, int]:
    """Load a resumable checkpoint; one line naming the file when it is not ours."""
    import torch

    from ..core.errors import InputError

    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"expected a mapping, got {type(state).__name__}")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        best_state = state["best_state"]
        if set(best_state) != set(net.state_dict()):
            raise KeyError("best_state does not match the network")
        history = json.loads(state["history"])
        best = json.loads(state["best"])
        if not isinstance(history, list) or not isinstance(best, dict):
            raise TypeError("history/best have the wrong type")
        start_epoch = int(state["epoch"]) + 1
        torch.set_rng_state(state["torch_rng"])
    except Exception as exc:  # torch raises many kinds on a foreign or damaged file
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(
            f"{ckpt}: not a usable training checkpoint for this model ({reason}); "
            "delete it or train without resuming"
        ) from None
    return best_state, history, best, start_epoch


def _concat(datasets: list):
    """One dataset of several (``None`` for none; the dataset itself for one)."""
    if not datasets:
        return None
    if len(datasets) == 1:
        return datasets[0]
    from torch.utils.data import ConcatDataset

    return ConcatDataset(datasets)


def split_indices(indices, val_fraction: float) -> tuple[list[int], list[int]]:
    """Training and validation indices: the last ``val_fraction`` are held out."""
    indices = list(indices)
    n_val = int(round(len(indices) * val_fraction)) if len(indices) > 1 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(indices) > 1 else 0), len(indices) - 1)
    return indices[: len(indices) - n_val], indices[len(indices) - n_val :]


def _stores(data) -> list[tuple[Path, int | None]]:
    """``data`` of :func:`train` as ``(store, n)`` pairs (``n``: None for every sample)."""
    if isinstance(data, (str, Path)) or hasattr(data, "__fspath__"):
        return [(Path(data), None)]
    out: list[tuple[Path, int | None]] = []
    for item in data:
        path, n = item if isinstance(item, (tuple, list)) else (item, None)
        if not isinstance(path, (str, Path)) and not hasattr(path, "__fspath__"):
            raise TypeError(
                f"training data: expected a store path or a (path, n) pair, got {item!r}"
            )
        if n is not None and int(n) < 1:
            raise ValueError(f"{path}: the number of samples must be >= 1, got {n}")
        out.append((Path(path), None if n is None else int(n)))
    if not out:
        raise ValueError("training data: no store given")
    return out


def train(
    data: str | Path | Sequence[str | Path | tuple[str | Path, int | None]],
    out: str | Path,
    params: TrainConfig | None = None,
    *,
    progress: Progress | None = None,
    resume: bool = True,
    description: str = "",
    **values: Any,
) -> TrainResult:
    """Train a U-Net on one or several database stores and save it as ``out`` (+ ``.json``).

    Parameters
    ----------
    data : path or sequence
        zarr store written by the database generator, or several (rehearsal:
        a new database and an old one), each a path or a ``(path, n)`` pair
        (its first ``n`` completed samples). The stores must share pixel
        size, sample shape and classes; ``max_samples`` caps each store,
        ``val_fraction`` holds out the last samples of each, and the training
        samples of all stores are shuffled together (each store's random
        draws are independent; the first store draws as it would alone, so a
        one-store list trains exactly as the bare path).
    out : path
        ``MODEL.pt`` (+ ``MODEL.json``), written in one step when training
        ends (an existing model there is kept until then); the resumable
        checkpoint is ``MODEL.pt.ckpt`` (removed at the end).
    params : TrainConfig, optional
        The settings (validated); ``values`` are applied on top of it (or of
        the defaults), e.g. ``train(db, "m.pt", epochs=5, width=8)``.
    resume : bool
        Continue from ``MODEL.pt.ckpt`` when it exists.
    """
    from ..simulate.database import completed_indices, read_attrs
    from .models import save_model
    from .unet import UNet, UNetConfig

    cfg = TrainConfig.of(params, **values)
    progress = as_progress(progress)
    stores = _stores(data)
    from ..core.outputs import check_writable

    check_writable(out, name="output")  # a read-only or full folder fails now, not after an epoch
    parts = []  # (store, attrs, training indices, validation indices)
    for store, n in stores:
        attrs = read_attrs(store)
        indices = completed_indices(store)
        caps = [c for c in (n, cfg.max_samples) if c]
        if caps:
            indices = indices[: min(caps)]
        if len(indices) < 2:
            raise ValueError(
                f"{store}: needs at least 2 completed samples to train, found {len(indices)}"
            )
        parts.append((store, attrs, *split_indices(indices, cfg.val_fraction)))
    first = parts[0][1]
    classes = list(first.get("classes") or ["background", "particle"])
    for store, attrs, _, _ in parts[1:]:
        for key, default in (("pixel_size", None), ("shape", None), ("classes", None)):
            a, b = first.get(key, default), attrs.get(key, default)
            if (list(a) if isinstance(a, (list, tuple)) else a) != (
                list(b) if isinstance(b, (list, tuple)) else b
            ):
                raise ValueError(
                    f"{store}: {key} {b} differs from {parts[0][0]}'s {a}; "
                    "stores trained on together must match"
                )
    n_classes = int(cfg.n_classes or len(classes))
    crop = cfg.crop_side
    h, w = first.get("shape", (None, None))
    if crop is not None and h is not None and crop > min(h, w):
        crop = None
    train_sets, val_sets = [], []
    for k, (store, _, train_idx, val_idx) in enumerate(parts):
        train_sets.append(
            ZarrDataset(
                store,
                train_idx,
                crop=crop,
                augment=cfg.augment,
                seed=cfg.seed,
                scale_range=cfg.scale_range,
                scale_prob=cfg.scale_prob,
                degrade_prob=cfg.degrade_prob,
                degrade_range=cfg.degrade_range,
                stream=k,
            )
        )
        if val_idx:
            val_sets.append(
                ZarrDataset(
                    store,
                    val_idx,
                    crop=None,
                    augment=False,
                    seed=cfg.seed + 1,
                    scale_range=cfg.scale_range if cfg.val_scale else None,
                    fixed=True,
                    stream=k,
                )
            )
    train_set, val_set = _concat(train_sets), _concat(val_sets)
    if cfg.deterministic and not cfg.init:
        # the fresh network's initial weights come from the seed, not from whatever
        # state torch's generator is in (two trainings in one process agree)
        _seed_everything(cfg.seed, cfg.deterministic)
    net = UNet(
        UNetConfig(in_channels=1, n_classes=n_classes, width=cfg.width, blocks=tuple(cfg.blocks))
    )
    parent = None
    if cfg.init:
        from .models import load_model

        base = load_model(cfg.init)
        if base.metadata.get("architecture") != net.config.to_dict():
            raise ParameterError(
                "init",
                f"{cfg.init}: architecture {base.metadata.get('architecture')} "
                f"differs from the requested {net.config.to_dict()}",
            )
        net.load_state_dict(base.net.state_dict())
        parent = {"name": base.name, "path": str(base.path), "sha256": base.metadata.get("sha256")}
    out = Path(out)
    if out.suffix != ".pt":
        out = out.with_suffix(".pt")

    def data_record(store, attrs, train_idx, val_idx) -> dict[str, Any]:
        return {
            "store": str(store.resolve()),
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "seed": attrs.get("seed"),
            "spec_name": (attrs.get("spec") or {}).get("name"),
        }

    if len(parts) == 1:
        data_meta = data_record(*parts[0])
        lineage_data: str | list[str] = data_meta["store"]
    else:
        records = [data_record(*p) for p in parts]
        data_meta = {
            "stores": records,
            "n_train": sum(r["n_train"] for r in records),
            "n_val": sum(r["n_val"] for r in records),
        }
        lineage_data = [r["store"] for r in records]
    names = " + ".join(p[0].name for p in parts)
    metadata = {
        "description": description or f"U-Net trained on {names}",
        "pixel_size": first.get("pixel_size"),
        "classes": classes[:n_classes],
        "normalization": "zscore",
        "training": {"settings": cfg.to_dict(), "data": data_meta},
        "lineage": {"parent": parent, "data": lineage_data},
    }

    # the previous model at ``out`` stays until training has finished: the
    # resumable checkpoint holds the progress, the model is written once at the end
    from ..core.outputs import cleanup_stale

    out.parent.mkdir(parents=True, exist_ok=True)
    cleanup_stale(out.parent)
    ckpt = out.with_name(out.name + ".ckpt")
    if not resume and ckpt.exists():
        ckpt.unlink()
    result = fit(net, train_set, val_set, cfg, n_classes, progress, checkpoint=ckpt)
    metadata["metrics"] = {
        k: result.best[k] for k in ("f1", "iou", "epoch") if result.best.get(k) is not None
    }
    metadata["metrics"]["split"] = "validation"
    metadata["training"]["history"] = result.history
    metadata["training"]["seconds"] = round(result.seconds, 1)
    metadata["training"]["images_per_second"] = round(result.images_per_second, 2)
    save_model(net, out, metadata)
    if ckpt.exists():
        ckpt.unlink()
    result.path = out
    return result
