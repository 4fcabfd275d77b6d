"""A model as a ``.json`` (settings) + ``.npz`` (numbers) pair: never pickle.

Chip-community corrections models and series references (``cluster``) and
pixel classifiers (``classify``) are saved this way so that loading a file
someone sent never executes code. Both files are written atomically; reading checks the
``format`` tag and refuses pickled arrays.

Examples
--------
>>> import tempfile, pathlib, numpy as np
>>> p = pathlib.Path(tempfile.mkdtemp()) / "model"
>>> _ = save_pair(p, {"format": "demo", "k": 3}, {"w": np.arange(3.0)})
>>> meta, arrays = load_pair(p, "demo", "demo model")
>>> meta["k"], arrays["w"].tolist()
(3, [0.0, 1.0, 2.0])
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["load_pair", "pair_paths", "save_pair"]


def pair_paths(path: str | Path) -> tuple[Path, Path]:
    """``(<stem>.json, <stem>.npz)`` for a ``.json``/``.npz`` path or a stem."""
    path = Path(path)
    return path.with_suffix(".json"), path.with_suffix(".npz")


def save_pair(
    path: str | Path,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    default: Callable[[Any], Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``meta`` as JSON and ``arrays`` as ``.npz``, each atomically; return both paths."""
    from .outputs import atomic_file

    js, npz = pair_paths(path)
    with atomic_file(npz) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    with atomic_file(js) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=default), encoding="utf-8")
    return js, npz


def load_pair(path: str | Path, fmt: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a pair written by :func:`save_pair`; ``fmt`` must match ``meta["format"]``.

    Raises
    ------
    FileNotFoundError
        One of the two files is missing.
    InputError
        Not valid JSON, another format, or an unreadable/pickled ``.npz``
        (the message names the file and ``what`` it should be).
    """
    js, npz = pair_paths(path)
    for p in (js, npz):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: missing (a {what} is a .json + .npz pair)")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{js}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != fmt:
        raise InputError(f"{js}: not a napari-interfaces {what}")
    from .limits import check_npz

    check_npz(npz, what)  # declared bytes, before anything is inflated
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{npz}: not a valid {what}: {_first(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - zlib and zipfile raise their own kinds
        raise InputError(f"{npz}: not a valid {what}: {_first(exc)}") from None
    return meta, arrays


def _first(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
