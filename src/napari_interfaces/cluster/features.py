"""Chip feature extractors behind one small interface.

``get_extractor(name, **settings)`` returns an :class:`Extractor`; calling
``extractor(image, grid, progress)`` gives one ``float32`` row per chip.

=============  ==============================================================
``fft``        FFT power spectrum of every chip (Hann window): mean log
               power in radial bins, power fraction in angular bins, chip
               mean and standard deviation. Weight-free, fast, strong on
               lattice images.
``filterbank`` Gaussian-derivative responses (smoothed, gradient magnitude,
               Laplacian of Gaussian) at several scales on the whole image;
               per-chip mean and standard deviation of each. Weight-free.
``resnet50``   ResNet-50 in torchvision's layout from a local weights file
               (ImageNet or MicroNet); 2048-d global average pool.
``learned``    A small encoder trained self-supervised by this project on
               synthetic lattice micrographs; shipped in the package.
=============  ==============================================================

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.cluster.chips import make_grid
>>> from napari_interfaces.cluster.features import get_extractor
>>> img = np.random.default_rng(0).random((128, 128, 1), dtype=np.float32)
>>> f = get_extractor("fft")(img, make_grid(img.shape, 32, 16))
>>> f.shape
(49, 26)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.progress import Progress, as_progress
from .chips import ChipGrid, extract_chips

__all__ = [
    "EXTRACTORS",
    "Extractor",
    "FFTExtractor",
    "FilterBankExtractor",
    "ResNet50Extractor",
    "LearnedExtractor",
    "get_extractor",
    "RESNET_HOW_TO",
]

RESNET_HOW_TO = (
    "The resnet50 extractor needs a local weights file in torchvision's ResNet-50 layout "
    "(nothing is downloaded). Get one on a machine with internet access, e.g. ImageNet: "
    '`python -c "import torch, torchvision; torch.save(torchvision.models.resnet50('
    "weights='IMAGENET1K_V2').state_dict(), 'resnet50_imagenet.pt')\"`, or a MicroNet "
    "encoder from nasa/pretrained-microscopy-models (resnet50 'micronet' weights), then "
    "pass it with --weights FILE (or weights=... / the dock's Weights field), or put it in "
    "the weights_dir folder as resnet50.pt."
)


class Extractor:
    """Base class: ``extractor(image (H, W, C), grid, progress) -> (N, D) float32``."""

    name = "base"

    def settings(self) -> dict:
        """JSON-serializable settings that rebuild this extractor (with ``name``)."""
        return {"name": self.name}

    def __call__(
        self, image: np.ndarray, grid: ChipGrid, progress: Progress | None = None
    ) -> np.ndarray:
        raise NotImplementedError


# --------------------------------------------------------------------- fft
def _fft_bins(
    chip: int, n_radial: int, n_angular: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fy = np.fft.fftfreq(chip) * chip
    fx = np.fft.rfftfreq(chip) * chip
    yy, xx = np.meshgrid(fy, fx, indexing="ij")
    r = np.hypot(yy, xx).ravel()
    ang = np.mod(np.arctan2(yy, xx), np.pi).ravel()
    edges = np.linspace(1.0, chip / 2.0, n_radial + 1)
    rb = np.digitize(r, edges) - 1
    radial = np.zeros((r.size, n_radial), np.float32)
    ok = (rb >= 0) & (rb < n_radial)
    radial[np.nonzero(ok)[0], rb[ok]] = 1.0
    radial /= np.maximum(radial.sum(0, keepdims=True), 1.0)
    ab = np.minimum((ang / np.pi * n_angular).astype(int), n_angular - 1)
    angular = np.zeros((r.size, n_angular), np.float32)
    okr = (r >= 2.0) & (r <= chip / 2.0)
    angular[np.nonzero(okr)[0], ab[okr]] = 1.0
    return radial, angular, okr.astype(np.float32)


class FFTExtractor(Extractor):
    """FFT power-spectrum descriptors (see module docstring).

    Parameters
    ----------
    n_radial, n_angular : int
        Number of radial (``1 .. chip/2`` cycles per chip) and angular
        (``0 .. 180`` degrees) bins.
    batch : int
        Chips per FFT batch (memory vs. speed).
    workers : int
        Threads for ``scipy.fft``.
    """

    name = "fft"

    def __init__(
        self, n_radial: int = 16, n_angular: int = 8, batch: int = 512, workers: int = 2
    ) -> None:
        self.n_radial = int(n_radial)
        self.n_angular = int(n_angular)
        self.batch = int(batch)
        self.workers = int(workers)

    def settings(self) -> dict:
        return {"name": self.name, "n_radial": self.n_radial, "n_angular": self.n_angular}

    def __call__(self, image, grid, progress=None):
        import scipy.fft

        progress = as_progress(progress)
        img = image if image.ndim == 3 else image[..., None]
        n, c, s = grid.n_chips, img.shape[-1], grid.chip
        radial, angular, annulus = _fft_bins(s, self.n_radial, self.n_angular)
        nr, na = self.n_radial, self.n_angular
        bins = np.ascontiguousarray(np.concatenate([radial, angular, annulus[:, None]], axis=1))
        hann = np.hanning(s).astype(np.float32)
        win = np.outer(hann, hann)
        per = nr + na + 2
        out = np.empty((n, c * per), np.float32)
        area = np.float32(s * s)
        progress.start(n, "fft features")
        for start in range(0, n, self.batch):
            stop = min(n, start + self.batch)
            b = stop - start
            chips = np.moveaxis(
                extract_chips(img, grid, slice(start, stop)), -1, 1
            )  # (B, C, s, s)
            mean = chips.sum((2, 3), dtype=np.float32) / area
            x = chips - mean[..., None, None]
            std = np.sqrt(np.einsum("bcij,bcij->bc", x, x) / area)
            x *= win
            f = scipy.fft.rfft2(x, workers=self.workers, overwrite_x=True)
            fv = f.view(np.float32)
            np.multiply(fv, fv, out=fv)
            p = (fv[..., 0::2] + fv[..., 1::2]).reshape(b * c, -1)
            q = p @ bins
            feats = np.empty((b * c, per), np.float32)
            np.log10(q[:, :nr] + 1e-8, out=feats[:, :nr])
            np.divide(
                q[:, nr : nr + na],
                np.maximum(q[:, nr + na : nr + na + 1], 1e-12),
                out=feats[:, nr : nr + na],
            )
            feats[:, nr + na] = mean.ravel()
            feats[:, nr + na + 1] = std.ravel()
            out[start:stop] = feats.reshape(b, c * per)
            progress.advance(b)
        return out


# -------------------------------------------------------------- filterbank
def _box_stats(
    resp: np.ndarray, ys: np.ndarray, xs: np.ndarray, s: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-chip mean and std of a 2-D response (chips of side ``s`` at ``ys x xs``)."""
    area = float(s * s)
    w = resp.shape[1]
    out = []
    for v in (resp, resp * resp):
        rows = np.empty((len(ys), w + 1), np.float64)
        rows[:, 0] = 0.0
        for i, y in enumerate(ys):
            rows[i, 1:] = v[y : y + s].sum(0, dtype=np.float32)
        np.cumsum(rows[:, 1:], axis=1, out=rows[:, 1:])
        tot = rows[:, xs + s] - rows[:, xs]
        out.append((tot / area).ravel())
    mean, sq = out
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    return mean.astype(np.float32), std.astype(np.float32)


def _half(x: np.ndarray) -> np.ndarray:
    h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


class FilterBankExtractor(Extractor):
    """Gaussian-derivative filter bank on an image pyramid, per-chip texture statistics.

    At each pyramid level (scale ``2**level`` pixels) the image is smoothed
    with a Gaussian of ``sigma`` level pixels; the responses are the
    band-pass residual (image minus smoothed), the gradient magnitude and
    the absolute Laplacian of the smoothed image. Each chip gets the mean
    and standard deviation of every response, plus its own intensity mean
    and standard deviation.

    Parameters
    ----------
    levels : int
        Pyramid levels (scales 1, 2, 4, ... pixels).
    sigma : float
        Gaussian sigma in level pixels.
    """

    name = "filterbank"

    def __init__(self, levels: int = 3, sigma: float = 1.0) -> None:
        self.levels = int(levels)
        self.sigma = float(sigma)

    def settings(self) -> dict:
        return {"name": self.name, "levels": self.levels, "sigma": self.sigma}

    def __call__(self, image, grid, progress=None):
        from scipy import ndimage as ndi

        progress = as_progress(progress)
        img = image if image.ndim == 3 else image[..., None]
        cols = []
        progress.start(img.shape[-1] * self.levels, "filter bank")
        for c in range(img.shape[-1]):
            x = np.ascontiguousarray(img[..., c], dtype=np.float32)
            cols += list(_box_stats(x, grid.ys, grid.xs, grid.chip))
            for level in range(self.levels):
                f = 2**level
                if level:
                    x = _half(x)
                s = max(2, grid.chip // f)
                ys = np.minimum(grid.ys // f, x.shape[0] - s)
                xs = np.minimum(grid.xs // f, x.shape[1] - s)
                g = ndi.gaussian_filter(x, self.sigma, mode="reflect", truncate=3.0)
                gy, gx = np.gradient(g)
                gm = np.hypot(gy, gx)
                lap = np.abs(ndi.laplace(g))
                for resp in (x - g, gm, lap):
                    cols += list(_box_stats(resp, ys, xs, s))
                progress.advance()
        return np.stack(cols, axis=1).astype(np.float32)


# ------------------------------------------------------------------ torch
def _torch_device(device: str | None):
    import torch

    from ..core import config

    dev = device or config.get("torch_device", "auto") or "auto"
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(dev)


def _limit_threads() -> None:
    import torch

    if torch.get_num_threads() > 2:
        torch.set_num_threads(2)


class ResNet50Extractor(Extractor):
    """ResNet-50 embeddings from a local torchvision-layout weights file.

    Parameters
    ----------
    weights : str or Path
        State-dict file (``.pt``/``.pth``); looked up on the weights search
        path by name too (see :mod:`napari_interfaces.core.weights`).
    input_size : int or None
        Resize chips to this size before the network (``None``: chip size).
    batch : int
        Chips per forward pass.
    device : str, optional
        ``cpu``, ``cuda`` ...; default from the ``torch_device`` setting.
    """

    name = "resnet50"

    def __init__(
        self,
        weights: str | Path | None = None,
        input_size: int | None = None,
        batch: int = 64,
        device: str | None = None,
    ) -> None:
        from ..core.weights import WeightsError, find_weights

        if weights is None or str(weights) == "":
            try:
                path = find_weights("resnet50.pt")
            except WeightsError:
                raise FileNotFoundError(
                    "no ResNet-50 weights file given. " + RESNET_HOW_TO
                ) from None
        else:
            try:
                path = find_weights(str(weights))
            except WeightsError as exc:
                raise FileNotFoundError(f"{exc}. {RESNET_HOW_TO}") from None
        self.weights = Path(path)
        self.input_size = None if input_size in (None, 0) else int(input_size)
        self.batch = int(batch)
        self.device = device
        self._model = None
        self.sha256 = None

    def settings(self) -> dict:
        self._load()
        return {
            "name": self.name,
            "weights": str(self.weights),
            "sha256": self.sha256,
            "input_size": self.input_size,
        }

    def _load(self):
        if self._model is not None:
            return self._model
        import torch

        from ..core.weights import WeightsError, load_torch_state, sha256
        from .nets import adapt_resnet_state, resnet50

        _limit_threads()
        self.sha256 = sha256(self.weights)
        state = adapt_resnet_state(load_torch_state(self.weights))
        model = resnet50()
        own = model.state_dict()
        missing = [k for k in own if k not in state and not k.startswith("fc.")]
        unexpected = [k for k in state if k not in own]
        shape_bad = [
            k
            for k in state
            if k in own
            and tuple(state[k].shape) != tuple(own[k].shape)
            and not k.startswith("fc.")
        ]
        if missing or unexpected or shape_bad:

            def _few(keys):
                return ", ".join(keys[:4]) + (" ..." if len(keys) > 4 else "")

            parts = []
            if missing:
                parts.append(f"{len(missing)} missing keys ({_few(missing)})")
            if unexpected:
                parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
            if shape_bad:
                parts.append(f"{len(shape_bad)} shape mismatches ({_few(shape_bad)})")
            raise WeightsError(
                f"{self.weights}: not a torchvision ResNet-50 state dict: " + "; ".join(parts)
            )
        state = {
            k: v
            for k, v in state.items()
            if not k.startswith("fc.") or tuple(v.shape) == tuple(own[k].shape)
        }
        model.load_state_dict(state, strict=False)
        model.eval()
        self._device = _torch_device(self.device)
        self._model = model.to(self._device)
        del torch
        return self._model

    def __call__(self, image, grid, progress=None):
        import torch

        progress = as_progress(progress)
        model = self._load()
        img = image if image.ndim == 3 else image[..., None]
        n = grid.n_chips
        mean = torch.tensor([0.485, 0.456, 0.406], device=self._device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=self._device).view(1, 3, 1, 1)
        out = np.empty((n, 2048), np.float32)
        progress.start(n, "resnet50 features")
        with torch.inference_mode():
            for start in range(0, n, self.batch):
                stop = min(n, start + self.batch)
                chips = extract_chips(img, grid, slice(start, stop))
                x = torch.from_numpy(np.moveaxis(chips, -1, 1).copy()).to(self._device)
                x = x.clamp(0, 1)
                if x.shape[1] == 1:
                    x = x.expand(-1, 3, -1, -1)
                elif x.shape[1] == 2:
                    x = torch.cat([x, x.mean(1, keepdim=True)], 1)
                elif x.shape[1] > 3:
                    x = x[:, :3]
                if self.input_size and self.input_size != x.shape[-1]:
                    x = torch.nn.functional.interpolate(
                        x, size=(self.input_size,) * 2, mode="bilinear", align_corners=False
                    )
                x = (x - mean) / std
                out[start:stop] = model.embed(x).float().cpu().numpy()
                progress.advance(stop - start)
        return out


LEARNED_FILE = "cluster_learned_encoder.pt"


class LearnedExtractor(Extractor):
    """The project's self-supervised chip encoder (shipped weights).

    Chips are resampled to the encoder's input size (``settings['input']``,
    32 px) after per-chip standardization; each channel is embedded
    separately and the embeddings concatenated. The chip mean and standard
    deviation are appended (the encoder sees standardized chips).
    """

    name = "learned"

    def __init__(
        self, weights: str | Path | None = None, batch: int = 1024, device: str | None = None
    ) -> None:
        from ..core.weights import find_weights

        self.weights = Path(
            find_weights(
                str(weights) if weights else LEARNED_FILE,
                "Train one with scripts/train_learned_encoder.py.",
            )
        )
        self.batch = int(batch)
        self.device = device
        self._model = None
        self.sha256 = None
        self.meta: dict = {}

    def settings(self) -> dict:
        self._load()
        return {"name": self.name, "weights": self.weights.name, "sha256": self.sha256}

    def _load(self):
        if self._model is not None:
            return self._model
        import json

        from ..core.weights import WeightsError, load_torch_state, sha256
        from .nets import ChipEncoder

        _limit_threads()
        self.sha256 = sha256(self.weights)
        state = load_torch_state(self.weights)
        meta_path = self.weights.with_suffix(".json")
        self.meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        model = ChipEncoder(
            dim=int(self.meta.get("dim", 32)), width=int(self.meta.get("width", 16))
        )
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsError(f"{self.weights}: not a ChipEncoder state dict: {exc}") from exc
        model.eval()
        self._device = _torch_device(self.device)
        self._model = model.to(self._device)
        return self._model

    def __call__(self, image, grid, progress=None):
        import torch

        progress = as_progress(progress)
        model = self._load()
        size = int(self.meta.get("input", 32))
        img = image if image.ndim == 3 else image[..., None]
        n, c = grid.n_chips, img.shape[-1]
        dim = model.dim
        out = np.empty((n, c * (dim + 2)), np.float32)
        progress.start(n, "learned features")
        with torch.inference_mode():
            for start in range(0, n, self.batch):
                stop = min(n, start + self.batch)
                chips = np.moveaxis(extract_chips(img, grid, slice(start, stop)), -1, 1)
                b = stop - start
                x = torch.from_numpy(chips.reshape(b * c, 1, grid.chip, grid.chip).copy())
                mean = x.mean((2, 3), keepdim=True)
                std = x.std((2, 3), keepdim=True)
                x = (x - mean) / (std + 1e-3)
                if x.shape[-1] != size:
                    x = torch.nn.functional.interpolate(
                        x, size=(size, size), mode="area" if x.shape[-1] > size else "bilinear"
                    )
                e = model(x.to(self._device)).float().cpu()
                feats = torch.cat([e, mean.view(-1, 1), std.view(-1, 1)], 1).numpy()
                out[start:stop] = feats.reshape(b, c * (dim + 2))
                progress.advance(b)
        return out


EXTRACTORS = {
    "fft": FFTExtractor,
    "filterbank": FilterBankExtractor,
    "resnet50": ResNet50Extractor,
    "learned": LearnedExtractor,
}


def get_extractor(name: str | dict, **settings) -> Extractor:
    """An extractor by name (or from a settings dict with ``name``).

    Raises
    ------
    ValueError
        Unknown name.
    """
    if isinstance(name, dict):
        settings = {**{k: v for k, v in name.items() if k not in ("name", "sha256")}, **settings}
        name = name["name"]
    key = str(name).lower()
    if key not in EXTRACTORS:
        raise ValueError(f"unknown features {name!r}; choose one of {', '.join(EXTRACTORS)}")
    return EXTRACTORS[key](**settings)
