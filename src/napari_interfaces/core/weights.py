"""Checksummed loading of model weights from local files.

Nothing is ever downloaded. Weights are looked up, in order, in the package
itself (small shipped models), in the ``weights_dir`` setting, and in
``<cache_dir>/weights``. Every file is verified against a SHA-256 before it
is deserialized, and torch files are read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from . import config
from .errors import InputError

__all__ = ["WeightsError", "find_weights", "load_torch_state", "sha256", "weights_search_path"]


class WeightsError(InputError, RuntimeError):
    """A weights file is missing, corrupt or of the wrong kind.

    An :class:`~.errors.InputError` (one line in the CLI, exit status 2);
    still a :class:`RuntimeError` for callers that catch that.
    """


def sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def weights_search_path() -> list[Path]:
    """Folders searched for weights files, most specific first."""
    paths = [Path(__file__).resolve().parents[1] / "weights"]
    extra = config.get("weights_dir")
    if extra:
        paths.append(Path(extra).expanduser())
    paths.append(config.cache_dir() / "weights")
    return paths


def find_weights(name: str, how_to_get: str = "") -> Path:
    """Locate a weights file by file name on :func:`weights_search_path`.

    Raises
    ------
    WeightsError
        If it is nowhere; the message lists the folders and ``how_to_get``.
    """
    p = Path(name).expanduser()
    if p.is_file():
        return p
    for folder in weights_search_path():
        if (folder / name).is_file():
            return folder / name
    where = ", ".join(str(f) for f in weights_search_path())
    raise WeightsError(
        f"weights file {name!r} not found (looked in: {where}). {how_to_get}".strip()
    )


def verify(path: str | Path, expected_sha256: str | None, how_to_get: str = "") -> str:
    """Check a file's SHA-256; returns the digest.

    ``how_to_get`` is appended to the error message (as in :func:`find_weights`).

    Raises
    ------
    WeightsError
        On mismatch, naming the file and both digests.
    """
    if expected_sha256 is not None and not isinstance(expected_sha256, str):
        raise WeightsError(f"{path}: expected sha256 {expected_sha256!r} is not a hex digest")
    digest = sha256(path)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise WeightsError(
            f"{path}: checksum mismatch (sha256 {digest}, expected {expected_sha256}); "
            f"the file is corrupt or not the expected weights. {how_to_get}".strip()
        )
    return digest


def load_torch_state(path: str | Path, expected_sha256: str | None = None) -> dict[str, Any]:
    """Load a torch state dict safely (``weights_only=True``) after a checksum.

    Raises
    ------
    WeightsError
        If the file is missing, fails the checksum or is not a state dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    verify(path, expected_sha256)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a bad file
        first = " ".join(str(exc).split())[:200]
        raise WeightsError(f"{path}: not a readable torch weights file: {first}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    return state
