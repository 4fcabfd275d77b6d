"""Model registry: the shipped default U-Net and the user's trained models.

A model is two files side by side:

``NAME.pt``
    the network's ``state_dict`` written with ``torch.save`` (tensors only,
    so it loads with ``torch.load(weights_only=True)``);
``NAME.json``
    its metadata: architecture (:class:`~napari_interfaces.nets.unet.UNetConfig`), class names,
    the pixel size it was trained at (Å/px), the input normalization, the
    SHA-256 of ``NAME.pt``, training settings and scores, and its
    **lineage** (the model it was fine-tuned from, the data and settings).

Loading verifies the checksum recorded in the JSON before deserializing
(:func:`napari_interfaces.core.weights.load_torch_state`). Nothing is
downloaded: the default model ships in ``napari_interfaces/weights``; user
models (trained, fine-tuned) are saved to :func:`user_models_dir`, and any
model can also be loaded from an explicit path. Saving a fine-tuned model
never overwrites its parent: it gets a new versioned name.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import config, weights
from ..nets.device import resolve_device  # re-exported: its old home

__all__ = [
    "DEFAULT_MODEL",
    "FORMAT",
    "LoadedModel",
    "ModelInfo",
    "list_models",
    "load_model",
    "model_info",
    "next_version_path",
    "resolve_model",
    "save_model",
    "user_models_dir",
]

#: File name (without suffix) of the shipped model in ``napari_interfaces/weights``.
DEFAULT_MODEL = "unet_hrtem_default"
#: ``format`` field of the metadata JSON.
FORMAT = "napari-interfaces/unet"
FORMAT_VERSION = 1


@dataclass
class ModelInfo:
    """A model found on disk (weights not loaded).

    Attributes
    ----------
    name : str
        ``"default"`` for the shipped model, else the file stem.
    path : Path
        The ``.pt`` file.
    metadata : dict
        Parsed ``.json`` metadata.
    builtin : bool
        Shipped with the package.
    """

    name: str
    path: Path
    metadata: dict[str, Any]
    builtin: bool = False

    @property
    def pixel_size(self) -> float | None:
        ps = self.metadata.get("pixel_size")
        return float(ps) if ps else None

    def summary(self) -> str:
        """One-line description for pickers and help texts."""
        m = self.metadata
        arch = m.get("architecture", {})
        parts = [self.name]
        if m.get("description"):
            parts.append(m["description"])
        if self.pixel_size:
            parts.append(f"{self.pixel_size:g} Å/px")
        parts.append(f"{arch.get('n_classes', '?')} classes, width {arch.get('width', '?')}")
        sc = m.get("metrics") or {}
        if "f1" in sc:
            parts.append(f"F1 {sc['f1']:.3f}")
        parent = (m.get("lineage") or {}).get("parent")
        if parent:
            parts.append(f"from {parent}")
        return " · ".join(parts)


@dataclass
class LoadedModel:
    """A network ready for inference, with its metadata."""

    net: Any  # UNet (torch imported lazily)
    metadata: dict[str, Any]
    path: Path | None = None
    name: str = ""

    @property
    def pixel_size(self) -> float | None:
        ps = self.metadata.get("pixel_size")
        return float(ps) if ps else None

    @property
    def n_classes(self) -> int:
        return int(self.metadata["architecture"]["n_classes"])

    @property
    def classes(self) -> list[str]:
        return list(self.metadata.get("classes") or [f"class {i}" for i in range(self.n_classes)])

    @property
    def normalization(self) -> str:
        return str(self.metadata.get("normalization", "zscore"))


def user_models_dir() -> Path:
    """Folder where trained and fine-tuned models are saved.

    ``<cache_dir>/weights`` (on the weights search path, see
    :func:`napari_interfaces.core.weights.weights_search_path`); created on
    first use.
    """
    path = config.cache_dir() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _json_path(pt: Path) -> Path:
    return pt.with_suffix(".json")


def _read_metadata(pt: Path) -> dict[str, Any]:
    js = _json_path(pt)
    if not js.is_file():
        raise weights.WeightsError(
            f"{pt}: no metadata file {js.name} beside it (models are saved as NAME.pt + NAME.json)"
        )
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise weights.WeightsError(f"{js}: not valid JSON: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        fmt = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise weights.WeightsError(f"{js}: not a napari-interfaces U-Net model (format {fmt!r})")
    validate_metadata(js, meta)
    return meta


#: Bounds of the architecture fields a model file may declare (the shipped and
#: trained models use width 8..64 and 4 stages of 1..3 blocks): a tampered file
#: cannot make the loader build a network of gigabytes before the weights are checked.
ARCH_LIMITS = {"in_channels": (1, 4), "n_classes": (2, 255), "width": (2, 256)}
MAX_STAGES = 6
MAX_BLOCKS = 16


def validate_metadata(js: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Check a model's metadata before anything is built (one line naming the file and key)."""

    def bad(key: str, value: Any, want: str) -> weights.WeightsError:
        where = f"{js.with_suffix('.pt')} (metadata {js.name})"
        return weights.WeightsError(f"{where}: {key} = {value!r}: expected {want}")

    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    sha = meta.get("sha256")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
        raise bad("sha256", sha, "a hex SHA-256 digest")
    for key in ("description", "normalization"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise bad(key, meta[key], "text")
    ps = meta.get("pixel_size")
    if ps is not None and not (
        isinstance(ps, (int, float)) and not isinstance(ps, bool) and math.isfinite(ps) and ps > 0
    ):
        raise bad("pixel_size", ps, "a positive number of Å per pixel (or null)")
    arch = meta.get("architecture")
    if not isinstance(arch, dict):
        raise bad("architecture", arch, "a mapping")
    unknown = set(arch) - {*ARCH_LIMITS, "blocks"}
    if unknown:
        raise bad("architecture", sorted(unknown), f"only {sorted({*ARCH_LIMITS, 'blocks'})}")
    for key, (lo, hi) in ARCH_LIMITS.items():
        v = arch.get(key)
        if key in arch and not (is_int(v) and lo <= v <= hi):
            raise bad(f"architecture.{key}", v, f"an integer in [{lo}, {hi}]")
    blocks = arch.get("blocks")
    if "blocks" in arch and not (
        isinstance(blocks, list)
        and 1 <= len(blocks) <= MAX_STAGES
        and all(is_int(b) and 1 <= b <= MAX_BLOCKS for b in blocks)
    ):
        raise bad(
            "architecture.blocks", blocks, f"1 to {MAX_STAGES} stages of 1 to {MAX_BLOCKS} blocks"
        )
    classes = meta.get("classes")
    n = arch.get("n_classes", 2)
    if classes is not None and not (
        isinstance(classes, list)
        and len(classes) == n
        and all(isinstance(c, str) for c in classes)
    ):
        raise bad("classes", classes, f"a list of {n} class names (architecture.n_classes)")
    return meta


def resolve_model(model: str | Path) -> Path:
    """Path of the ``.pt`` file of ``"default"``, a model name or a path.

    Raises
    ------
    napari_interfaces.core.weights.WeightsError
        If the model is not found.
    """
    if isinstance(model, Path) or str(model).endswith(".pt") or "/" in str(model):
        p = Path(model).expanduser()
        if not p.is_file():
            raise weights.WeightsError(f"{p}: no such model file")
        return p
    name = DEFAULT_MODEL if model in ("default", "", None) else str(model)
    return weights.find_weights(
        name + ".pt",
        how_to_get="Train one with `napari-interfaces train` or pass the path of a .pt file.",
    )


def model_info(model: str | Path) -> ModelInfo:
    """:class:`ModelInfo` of a model name or path (reads the JSON only)."""
    pt = resolve_model(model)
    builtin = pt.parent == weights.weights_search_path()[0]
    name = "default" if (builtin and pt.stem == DEFAULT_MODEL) else pt.stem
    return ModelInfo(name=name, path=pt, metadata=_read_metadata(pt), builtin=builtin)


def list_models() -> list[ModelInfo]:
    """All models on the weights search path: the default first, then newest first."""
    found: dict[Path, ModelInfo] = {}
    for i, folder in enumerate(weights.weights_search_path()):
        if not folder.is_dir():
            continue
        for pt in sorted(folder.glob("*.pt")):
            if not _json_path(pt).is_file():
                continue
            try:
                meta = _read_metadata(pt)
            except weights.WeightsError:
                continue
            builtin = i == 0
            name = "default" if (builtin and pt.stem == DEFAULT_MODEL) else pt.stem
            found.setdefault(pt.resolve(), ModelInfo(name, pt, meta, builtin))
    infos = list(found.values())
    infos.sort(key=lambda m: (m.name != "default", _neg_time(m.metadata.get("created", ""))))
    return infos


def _neg_time(s: str) -> float:
    try:
        return -_dt.datetime.fromisoformat(s).timestamp()
    except (ValueError, TypeError):
        return 0.0


def load_model(model: str | Path = "default", device: str = "cpu") -> LoadedModel:
    """Load a model (checksum verified, ``weights_only=True``) in eval mode.

    Parameters
    ----------
    model : str or Path
        ``"default"``, a model name from :func:`list_models`, or a ``.pt`` path.
    device : str
        torch device (``"cpu"``, ``"cuda"``, ``"auto"``).
    """
    from ..nets.unet import build_unet

    info = model_info(model)
    meta = info.metadata
    state = weights.load_torch_state(info.path, expected_sha256=meta.get("sha256"))
    _check_shapes(info.path, meta["architecture"], state)  # before allocating the network
    net = build_unet(meta["architecture"])
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise weights.WeightsError(
            f"{info.path}: weights do not fit the architecture in its metadata: "
            f"{' '.join(str(exc).split())[:200]}"
        ) from None
    net.to(resolve_device(device)).eval()
    return LoadedModel(net=net, metadata=meta, path=info.path, name=info.name)


def _check_shapes(path: Path, arch: dict[str, Any], state: Any) -> None:
    """Compare the declared architecture with the weights' own shapes, allocating nothing.

    The network is built on torch's ``meta`` device (shapes only), so a
    file whose JSON declares another architecture than its weights fails
    with one line before any memory is spent on parameters.
    """
    import torch

    from ..nets.unet import build_unet

    if not isinstance(state, dict):
        raise weights.WeightsError(f"{path}: expected a state dict of tensors")
    try:
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build_unet(arch).state_dict().items()}
    except (ValueError, TypeError) as exc:
        raise weights.WeightsError(f"{path}: bad architecture in its metadata: {exc}") from None
    got = {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}
    if shapes != got:
        diff = sorted(set(shapes) ^ set(got)) or [k for k in shapes if shapes[k] != got.get(k)]
        k = diff[0]
        raise weights.WeightsError(
            f"{path}: weights do not fit the architecture in its metadata "
            f"(e.g. {k}: expected {shapes.get(k)}, file has {got.get(k)})"
        )


def save_model(
    net,
    path: str | Path,
    metadata: dict[str, Any],
) -> Path:
    """Write ``path`` (state dict) and its ``.json`` metadata; returns the ``.pt`` path.

    Both files are written to temporary names first and moved into place
    only when both are complete, so an interrupted save never leaves a
    half-written model (and the JSON's sha256 pairs it with its ``.pt``).

    ``format``, ``architecture``, ``sha256`` and ``created`` are filled in;
    everything else in ``metadata`` (``pixel_size``, ``classes``,
    ``normalization``, ``training``, ``metrics``, ``lineage``, ...) is kept.
    """
    import torch

    path = Path(path)
    if path.suffix != ".pt":
        path = path.with_suffix(".pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..core.outputs import TMP_MARK

    tag = f"{TMP_MARK}-{uuid.uuid4().hex[:8]}"
    tmp_pt = path.with_name(f".{path.name}.{tag}")
    tmp_js = path.with_name(f".{_json_path(path).name}.{tag}")
    try:
        state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
        torch.save(state, tmp_pt)
        meta = dict(metadata)
        meta["format"] = FORMAT
        meta["format_version"] = FORMAT_VERSION
        meta["architecture"] = net.config.to_dict()
        meta["sha256"] = weights.sha256(tmp_pt)
        meta.setdefault(
            "created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        )
        meta.setdefault("normalization", "zscore")
        meta.setdefault("name", path.stem)
        tmp_js.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        # both files are complete: swap them in (the checksum in the JSON ties
        # them together, so a kill between the two replaces is detected on load)
        os.replace(tmp_pt, path)
        os.replace(tmp_js, _json_path(path))
    finally:
        for t in (tmp_pt, tmp_js):
            with contextlib.suppress(FileNotFoundError):
                t.unlink()
    return path


def next_version_path(parent_name: str, folder: str | Path | None = None) -> Path:
    """A new, unused ``.pt`` path for a model derived from ``parent_name``.

    ``default`` -> ``unet_finetuned_v1.pt``; ``unet_finetuned_v1`` ->
    ``unet_finetuned_v2.pt`` (the next free number), so no model is ever
    overwritten.
    """
    folder = Path(folder) if folder is not None else user_models_dir()
    stem = "unet_finetuned" if parent_name in ("default", DEFAULT_MODEL) else parent_name
    stem = re.sub(r"_v\d+$", "", stem)
    k = 1
    while (folder / f"{stem}_v{k}.pt").exists():
        k += 1
    return folder / f"{stem}_v{k}.pt"
