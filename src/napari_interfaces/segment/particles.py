"""Particles from a segmentation: split touching ones, measure each, size histogram.

What users of nanoparticle HRTEM want is a size distribution. From the
foreground mask :func:`split_particles` separates touching particles with a
distance-transform watershed: markers are the maxima of the distance to the
background that stand out by at least ``split_depth`` (Å) from the saddle to
their neighbours (``h``-maxima), so a neck narrower than the particles by
that much splits them and faceted outlines do not over-split.
:func:`measure_particles` returns the instance labels and a
:class:`ParticleTable` (one row per particle, physical units), which the CLI
writes as CSV and the dock attaches to a napari Labels layer as
``features``; :func:`write_size_histogram` draws the equivalent-diameter
histogram.

Examples
--------
>>> import numpy as np
>>> yy, xx = np.mgrid[:80, :120]
>>> mask = ((yy - 40) ** 2 + (xx - 35) ** 2 < 20**2) | ((yy - 40) ** 2 + (xx - 73) ** 2 < 20**2)
>>> inst, table = measure_particles(mask, pixel_size=1.0)   # two discs that touch
>>> len(table), [round(float(d), 1) for d in table["equivalent_diameter_nm"]]
(2, [4.0, 4.0])
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "COLUMNS",
    "ParticleTable",
    "match_instances",
    "measure_particles",
    "split_particles",
    "write_size_histogram",
]

#: Columns of the particle table, with their units.
COLUMNS = {
    "id": "",
    "centroid_y_nm": "nm",
    "centroid_x_nm": "nm",
    "centroid_y_px": "px",
    "centroid_x_px": "px",
    "area_nm2": "nm²",
    "equivalent_diameter_nm": "nm",
    "circularity": "",
    "mean_intensity": "",
    "touches_edge": "",
    "uncertainty": "",
    "uncertain_area_nm2": "nm²",
}


@dataclass
class ParticleTable:
    """One row per particle; ``columns`` maps each name of :data:`COLUMNS` to an array."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)
    pixel_size: float = 1.0

    def __len__(self) -> int:
        ids = self.columns.get("id")
        return 0 if ids is None else len(ids)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def features(self) -> dict[str, np.ndarray]:
        """napari Labels ``features``: an ``index`` column (the label value) plus the columns."""
        d = {"index": np.asarray(self.columns.get("id", np.zeros(0, int)))}
        d.update({k: np.asarray(v) for k, v in self.columns.items() if k != "id"})
        return d

    def rows(self) -> list[dict]:
        """The table as a list of dicts (JSON-ready Python scalars)."""
        names = list(self.columns)
        return [{k: self.columns[k][i].item() for k in names} for i in range(len(self))]

    def to_csv(self, path: str | Path) -> Path:
        """Write the table (header with units) to ``path``."""
        path = Path(path)
        names = list(self.columns)
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(names)
            for i in range(len(self)):
                row = []
                for k in names:
                    v = self.columns[k][i]
                    if isinstance(v, (bool, np.bool_)):
                        row.append(int(v))
                    elif isinstance(v, (float, np.floating)):
                        row.append(f"{float(v):.6g}")
                    else:
                        row.append(v)
                w.writerow(row)
        return path


def split_particles(
    mask: np.ndarray,
    pixel_size: float,
    split_depth: float = 2.0,
    min_area: float = 0.5,
) -> np.ndarray:
    """Instance labels (int32, 0 = background) of a foreground mask, touching particles split.

    Parameters
    ----------
    mask : (H, W) bool
    pixel_size : float
        Å/px.
    split_depth : float
        Å: how much deeper than the neck between two particles each must be
        (in distance to the background) to be split (``h``-maxima depth).
    min_area : float
        nm²: smaller pieces are dropped.
    """
    from scipy import ndimage
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    m = np.asarray(mask, bool)
    if not m.any():
        return np.zeros(m.shape, np.int32)
    m = ndimage.binary_fill_holes(m)
    dist = ndimage.distance_transform_edt(m).astype(np.float32)
    h = max(1.0, float(split_depth) / float(pixel_size))
    smooth = ndimage.gaussian_filter(dist, 1.0)
    markers, _ = ndimage.label(h_maxima(smooth, h))
    cc, ncc = ndimage.label(m)
    # every connected component gets at least one marker
    has = np.zeros(ncc + 1, bool)
    has[np.unique(cc[markers > 0])] = True
    missing = np.flatnonzero(~has[1:]) + 1
    if missing.size:
        extra = np.isin(cc, missing)
        markers = np.where(extra & (markers == 0), cc + markers.max(), markers)
    inst = watershed(-smooth, markers, mask=m).astype(np.int32)
    # drop tiny pieces, renumber 1..N in raster order
    min_px = float(min_area) * 100.0 / float(pixel_size) ** 2
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    keep = ids[counts >= min_px]
    lut = np.zeros(int(inst.max()) + 1, np.int32)
    lut[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
    return lut[inst]


def measure_particles(
    mask_or_instances: np.ndarray,
    pixel_size: float,
    image: np.ndarray | None = None,
    uncertainty: np.ndarray | None = None,
    split: bool = True,
    split_depth: float = 2.0,
    min_area: float = 0.5,
) -> tuple[np.ndarray, ParticleTable]:
    """Particle instances and their table.

    Parameters
    ----------
    mask_or_instances : (H, W) bool or int
        A foreground mask (split with :func:`split_particles` when ``split``),
        or instance labels to measure as they are (``split=False``, e.g. the
        user's corrected labels).
    pixel_size : float
        Å/px.
    image : (H, W), optional
        For ``mean_intensity``.
    uncertainty : (H, W), optional
        Per-pixel uncertainty (:mod:`.uncertainty`) for the ``uncertainty``
        (mean over the particle and a 2 px rim) and ``uncertain_area_nm2``
        (its sum: the expected wrong area, which ranks what to correct first)
        columns.
    split_depth, min_area : see :func:`split_particles`.

    Returns
    -------
    instances : (H, W) int32
    table : ParticleTable
    """
    from scipy import ndimage
    from skimage.measure import regionprops

    a = np.asarray(mask_or_instances)
    if split or a.dtype == bool:
        inst = split_particles(a > 0, pixel_size, split_depth, min_area)
    else:
        inst = a.astype(np.int32)
    n = int(inst.max()) if inst.size else 0
    ps_nm = float(pixel_size) / 10.0
    cols: dict[str, list] = {k: [] for k in COLUMNS}
    props = regionprops(inst, intensity_image=None)
    h, w = inst.shape
    for rp in props:
        cy, cx = rp.centroid
        area_px = float(rp.area)
        perim = float(rp.perimeter)
        y0, x0, y1, x1 = rp.bbox
        cols["id"].append(int(rp.label))
        cols["centroid_y_px"].append(cy)
        cols["centroid_x_px"].append(cx)
        cols["centroid_y_nm"].append(cy * ps_nm)
        cols["centroid_x_nm"].append(cx * ps_nm)
        cols["area_nm2"].append(area_px * ps_nm**2)
        cols["equivalent_diameter_nm"].append(2.0 * np.sqrt(area_px / np.pi) * ps_nm)
        cols["circularity"].append(
            min(1.0, 4.0 * np.pi * area_px / perim**2) if perim > 0 else 1.0
        )
        cols["touches_edge"].append(bool(y0 == 0 or x0 == 0 or y1 == h or x1 == w))
    ids = np.arange(1, n + 1)
    if image is not None and n:
        img = np.asarray(image, np.float32)
        if img.ndim == 3:
            img = img[..., :3].mean(-1)
        cols["mean_intensity"] = list(ndimage.mean(img, inst, ids))
    else:
        cols["mean_intensity"] = [np.nan] * n
    if uncertainty is not None and n:
        from .uncertainty import particle_uncertainty

        cols["uncertainty"] = list(particle_uncertainty(inst, uncertainty))
        cols["uncertain_area_nm2"] = list(
            particle_uncertainty(inst, uncertainty, reduce="sum") * ps_nm**2
        )
    else:
        cols["uncertainty"] = [np.nan] * n
        cols["uncertain_area_nm2"] = [np.nan] * n
    dtypes = {"id": np.int32, "touches_edge": bool}
    table = ParticleTable(
        {k: np.asarray(v, dtype=dtypes.get(k, np.float64)) for k, v in cols.items()},
        pixel_size=float(pixel_size),
    )
    return inst, table


def write_size_histogram(table: ParticleTable, path: str | Path, title: str = "") -> Path:
    """PNG histogram of the particles' equivalent diameters (nm); edge particles hatched."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    d = np.asarray(table["equivalent_diameter_nm"]) if len(table) else np.zeros(0)
    edge = np.asarray(table["touches_edge"]) if len(table) else np.zeros(0, bool)
    fig = Figure(figsize=(4.5, 3.2), dpi=120)
    ax = fig.add_subplot()
    if d.size:
        bins = np.histogram_bin_edges(d, bins=min(30, max(5, int(np.sqrt(d.size)) + 2)))
        ax.hist(
            [d[~edge], d[edge]],
            bins=bins,
            stacked=True,
            color=["#4c72b0", "#b0b0b0"],
            label=["inside", "touching the edge"],
        )
        ax.legend(fontsize=7, frameon=False)
        inner = d[~edge] if (~edge).any() else d
        ax.set_title(
            title or f"{d.size} particles, mean {inner.mean():.2f} nm (sd {inner.std():.2f})",
            fontsize=9,
        )
    else:
        ax.set_title(title or "no particles", fontsize=9)
    ax.set_xlabel("equivalent diameter (nm)")
    ax.set_ylabel("particles")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, format="png")
    return path


def match_instances(pred: np.ndarray, truth: np.ndarray, iou: float = 0.5) -> dict:
    """Match predicted and true instances one-to-one at IoU >= ``iou``.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``f1`` and ``pairs`` (list of
        ``(pred_id, true_id, iou)``). With ``iou`` >= 0.5 a match is unique,
        so greedy matching by IoU is optimal.
    """
    p = np.asarray(pred).astype(np.int64).ravel()
    t = np.asarray(truth).astype(np.int64).ravel()
    n_p, n_t = int(p.max(initial=0)), int(t.max(initial=0))
    if n_p == 0 or n_t == 0:
        return dict(tp=0, fp=n_p, fn=n_t, f1=float(n_p == n_t == 0), pairs=[])
    inter = np.bincount(p * (n_t + 1) + t, minlength=(n_p + 1) * (n_t + 1)).reshape(
        n_p + 1, n_t + 1
    )
    area_p, area_t = inter.sum(1), inter.sum(0)
    ov = inter[1:, 1:].astype(np.float64)
    union = area_p[1:, None] + area_t[None, 1:] - ov
    ious = np.where(union > 0, ov / np.maximum(union, 1), 0.0)
    pairs = []
    used_p, used_t = set(), set()
    for flat in np.argsort(-ious, axis=None):
        i, j = divmod(int(flat), n_t)
        if ious[i, j] < iou:
            break
        if i in used_p or j in used_t:
            continue
        used_p.add(i)
        used_t.add(j)
        pairs.append((i + 1, j + 1, float(ious[i, j])))
    tp = len(pairs)
    fp, fn = n_p - tp, n_t - tp
    return dict(tp=tp, fp=fp, fn=fn, f1=2 * tp / max(1, 2 * tp + fp + fn), pairs=pairs)
