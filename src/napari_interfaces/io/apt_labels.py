"""Point clouds with a per-ion label (e.g. phase): the ``.npz`` format.

Format (a NumPy ``.npz`` archive, uncompressed):

=================  =========================  =====================================
key                dtype, shape               meaning
=================  =========================  =====================================
``xyz``            float32 (n, 3)             x, y, z in nm
``mass``           float32 (n,)               mass-to-charge ratio in Da
``label``          int32 (n,)                 label per ion (``-1`` = none)
``label_names``    str (k,)                   name of label ``i`` at index ``i``
``metadata``       str ()                     JSON: ``{"format": "napari-interfaces
                                              labelled point cloud", "version": 1, ...}``
``col_<name>``     any (n,)                   optional extra per-ion columns
=================  =========================  =====================================

Read with ``numpy.load`` anywhere; :func:`read_labelled_pointcloud` returns
a :class:`~napari_interfaces.aptmodel.pointcloud.PointCloud` with ``columns["label"]``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..aptmodel.pointcloud import PointCloud
from .apt_checks import _check_cloud
from .apt_errors import AptFormatError

__all__ = ["write_labelled_pointcloud", "read_labelled_pointcloud", "FORMAT_NAME"]

FORMAT_NAME = "napari-interfaces labelled point cloud"


def write_labelled_pointcloud(
    path: str | os.PathLike,
    cloud: PointCloud,
    labels: np.ndarray,
    label_names: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``cloud`` with one integer label per ion (see module docs)."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.shape != (cloud.n_ions,):
        raise ValueError(f"labels must have shape ({cloud.n_ions},), got {labels.shape}")
    names = list(label_names or [str(i) for i in range(int(labels.max(initial=-1)) + 1)])
    meta = {"format": FORMAT_NAME, "version": 1, "source": cloud.source, **(metadata or {})}
    arrays = {
        "xyz": np.asarray(cloud.xyz, dtype=np.float32),
        "mass": np.asarray(cloud.mass, dtype=np.float32),
        "label": labels.astype(np.int32),
        "label_names": np.array(names, dtype=str),
        "metadata": np.array(json.dumps(meta)),
    }
    for k, v in cloud.columns.items():
        if k != "label":
            arrays[f"col_{k}"] = np.asarray(v)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def read_labelled_pointcloud(path: str | os.PathLike) -> PointCloud:
    """Read a labelled point cloud ``.npz``; labels in ``columns["label"]``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    from ..core.errors import InputError, SizeLimitError
    from ..core.limits import check_bytes, check_npz

    try:
        with zipfile.ZipFile(path) as zf:
            declared = sum(i.file_size for i in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise AptFormatError(path, f"not a readable .npz archive ({exc})") from None
    check_bytes(declared, f"{path.name}: labelled point cloud ({declared:,} bytes unpacked)")
    try:
        check_npz(path, "labelled point cloud")  # every array's header, before decoding
    except SizeLimitError:
        raise
    except InputError as exc:
        raise AptFormatError(path, str(exc).removeprefix(f"{path}: ")) from None
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = {"xyz", "mass", "label"} - set(z.files)
            if missing:
                raise AptFormatError(
                    path, f"not a labelled point cloud: missing {sorted(missing)}"
                )
            xyz, mass, label = z["xyz"], z["mass"], z["label"]
            names = [str(s) for s in z["label_names"]] if "label_names" in z.files else []
            meta = json.loads(str(z["metadata"])) if "metadata" in z.files else {}
            cols = {k[4:]: z[k] for k in z.files if k.startswith("col_")}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if isinstance(exc, AptFormatError):
            raise
        raise AptFormatError(path, f"not a readable .npz archive ({exc})") from None
    if (
        xyz.ndim != 2
        or xyz.shape[1:] != (3,)
        or mass.shape != (len(xyz),)
        or label.shape != (len(xyz),)
    ):
        raise AptFormatError(path, "inconsistent array shapes")
    if not (np.isfinite(xyz).all() and np.isfinite(mass).all()):
        raise AptFormatError(path, "non-finite coordinates or masses")
    cols["label"] = label
    meta["label_names"] = names
    meta.setdefault("format", "npz")
    cloud = PointCloud(xyz, mass, cols, source=str(path), metadata=meta)
    if len(xyz):
        _check_cloud(path, cloud, lambda ion, col: {})
    return cloud
