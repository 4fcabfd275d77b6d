"""One APT dataset: the point cloud, its ranges and where they came from.

:func:`open_dataset` is the one loader every caller uses (CLI, dask batch,
docks, napari reader): it reads the point cloud (any format of
:mod:`napari_interfaces.io.apt_pointcloud`), reads the range file given or
the one with the same stem beside the cloud, ranges every ion once
(chunked) and records the provenance: paths, format, ion count and the
ranged fraction. A range file that matches no ion (or very few) gives a
:class:`RangingWarning` ("0 of N ions ranged") that is also kept in
``provenance["warnings"]``.

Examples
--------
>>> import numpy as np
>>> from napari_interfaces.apt.dataset import APTDataset
>>> from napari_interfaces.aptmodel.pointcloud import PointCloud
>>> from napari_interfaces.aptmodel.ranging import Range, RangeTable
>>> cloud = PointCloud(np.zeros((3, 3), "f4"), np.array([27.0, 27.2, 50.0], "f4"))
>>> ds = APTDataset.from_arrays(cloud, RangeTable([Range(26.5, 27.5, "Al", {"Al": 1})]))
>>> ds.ranged_fraction
0.6666666666666666
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..aptmodel.pointcloud import PointCloud
from ..aptmodel.ranging import Composition, RangeTable, composition_of_cloud
from ..core.progress import Progress, as_progress

__all__ = ["APTDataset", "RangingWarning", "open_dataset", "MIN_RANGED_FRACTION"]

#: Below this ranged fraction :func:`open_dataset` warns that the ranges may not fit.
MIN_RANGED_FRACTION = 0.05


class RangingWarning(UserWarning):
    """The range file ranges no ion (or very few) of the point cloud."""


@dataclass
class APTDataset:
    """A point cloud with its (optional) ranges and provenance.

    Attributes
    ----------
    cloud : PointCloud
        Positions (nm) and mass-to-charge ratios (Da), possibly memory-mapped.
    ranges : RangeTable or None
        ``None`` when no range file was given or found.
    composition : Composition or None
        Species counts and at.% of every ion (with ranges).
    provenance : dict
        ``path``, ``format``, ``range_file``, ``n_ions``, ``n_ranged``,
        ``ranged_fraction`` and ``warnings`` (list of str).
    """

    cloud: PointCloud
    ranges: RangeTable | None = None
    composition: Composition | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_arrays(
        cls,
        cloud: PointCloud,
        ranges: RangeTable | None = None,
        progress: Progress | None = None,
        warn: bool = True,
    ) -> APTDataset:
        """A dataset from a cloud and ranges already in memory (ranges every ion once)."""
        comp = None
        prov: dict[str, Any] = {
            "path": cloud.source,
            "format": cloud.metadata.get("format"),
            "range_file": None if ranges is None else ranges.source,
            "n_ions": cloud.n_ions,
            "n_ranged": None,
            "ranged_fraction": None,
            "warnings": [],
        }
        if ranges is not None:
            comp = composition_of_cloud(cloud, ranges, progress=progress)
            prov["n_ranged"] = comp.ranged
            prov["ranged_fraction"] = comp.ranged_fraction
            prov["known_unranged"] = dict(comp.known_unranged)
            n_known = sum(comp.known_unranged.values())
            if (comp.ranged + n_known) / max(comp.n_ions, 1) < MIN_RANGED_FRACTION:
                src = Path(ranges.source).name if ranges.source else "the ranges"
                msg = (
                    f"{comp.ranged:,} of {comp.n_ions:,} ions ranged by {src}"
                    + (f" in {Path(cloud.source).name}" if cloud.source else "")
                    + ": check that the range file belongs to this dataset"
                )
                prov["warnings"].append(msg)
                if warn:
                    warnings.warn(msg, RangingWarning, stacklevel=3)
        return cls(cloud, ranges, comp, prov)

    @property
    def name(self) -> str:
        """File name of the point cloud (``"cloud"`` when in memory)."""
        return Path(self.cloud.source).name if self.cloud.source else "cloud"

    @property
    def stem(self) -> str:
        return Path(self.cloud.source).stem if self.cloud.source else "cloud"

    @property
    def path(self) -> str | None:
        return self.cloud.source

    @property
    def n_ions(self) -> int:
        return self.cloud.n_ions

    @property
    def ranged_fraction(self) -> float | None:
        return self.provenance.get("ranged_fraction")

    @property
    def warnings(self) -> list[str]:
        return list(self.provenance.get("warnings", []))

    def require_ranges(self) -> RangeTable:
        """The ranges, or an :class:`~napari_interfaces.core.errors.InputError` saying how to give them."""
        from ..core.errors import InputError

        if self.ranges is None:
            raise InputError(
                f"{self.path or 'point cloud'}: no range file given and none with the same "
                "stem beside it (.rrng/.rng/.env); choose one ({ranges})"
            )
        return self.ranges


def _read_ranges_noting(read_ranges, path, notes: list[str]) -> RangeTable:
    """``read_ranges(path)`` with its one :class:`RangeFileWarning` kept in ``notes``."""
    from ..aptmodel.ranging import RangeFileWarning

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always", RangeFileWarning)
        table = read_ranges(path)
    for w in rec:
        if issubclass(w.category, RangeFileWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return table


def open_dataset(
    path: str | os.PathLike,
    ranges: str | os.PathLike | RangeTable | None = None,
    progress: Progress | None = None,
    *,
    find_ranges: bool = True,
    require_ranges: bool = False,
    warn: bool = True,
) -> APTDataset:
    """Read a point cloud and its ranges: the one APT loader.

    Parameters
    ----------
    path : path-like
        Point cloud: ``.pos .epos .apt .ato .csv .txt`` or a labelled ``.npz``.
    ranges : path-like or RangeTable, optional
        Range file (``.rrng .rng .env``) or a table; by default the range
        file with the same stem beside ``path`` (when ``find_ranges``).
    progress : Progress, optional
        Reports "ranging" and can cancel it.
    find_ranges : bool
        Look for a range file beside ``path`` when ``ranges`` is not given.
    require_ranges : bool
        Raise :class:`~napari_interfaces.core.errors.InputError` when no
        ranges are given or found.
    warn : bool
        Emit :class:`RangingWarning` when few ions are ranged (the message is
        kept in ``provenance["warnings"]`` either way).

    Returns
    -------
    APTDataset
    """
    from ..io.apt_pointcloud import read_pointcloud
    from ..io.ranges import find_range_file, read_ranges

    progress = as_progress(progress)
    progress.start(None, "reading")
    path = Path(path)
    cloud = read_pointcloud(path)
    table: RangeTable | None
    notes: list[str] = []
    if isinstance(ranges, RangeTable):
        table = ranges
    else:
        found = ranges if ranges else (find_range_file(path) if find_ranges else None)
        table = _read_ranges_noting(read_ranges, found, notes) if found else None
    ds = APTDataset.from_arrays(cloud, table, progress=progress, warn=warn)
    # what the range reader skipped or merged: one line each, with the other warnings
    ds.provenance["warnings"][:0] = notes
    for msg in notes if warn else []:
        warnings.warn(msg, RangingWarning, stacklevel=2)
    if require_ranges:
        ds.require_ranges()
    return ds
